// socket_lanes.cc - see socket_lanes.h.
#include "transports/socket/socket_lanes.h"
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include "src/base/debug.h"
#include "src/base/wait.h"

namespace fccl {

namespace {

size_t roundUp(size_t x, size_t a) { return (x + a - 1) / a * a; }

// After its last I/O a helper keeps polling (yielding the core) this long before it sleeps in
// poll(): back-to-back collectives never pay a wake-up, an idle communicator costs nothing.
constexpr int64_t kSpinNs = 2 * 1000 * 1000;
constexpr int kSleepPollMs = 100;  // a sleeping helper still looks at its stop flag this often
// A receive lane's read buffer: a frame with up to this much payload (less the header) costs one
// recv, not three (header, payload, EAGAIN) (2 hosts x 1 rank, 8 B allreduce: 7.4-8.2 -> 6.7-6.9
// us; Open MPI's btl tcp reads so too).
constexpr size_t kRxBytes = 4096;

}  // namespace

// ---- SocketLink ----

SocketLink::SocketLink(int peer_, int nslots_, size_t slotBytes_)
    : peer(peer_), nslots(nslots_), slotBytes(slotBytes_) {
  const size_t ctrl = roundUp(sizeof(FifoCtrl), 64), fifo = ctrl + size_t(nslots) * slotBytes;
  void* p = nullptr;
  if (posix_memalign(&p, 4096, 2 * fifo) != 0) throw std::bad_alloc();
  memory_ = static_cast<char*>(p);
  memset(memory_, 0, 2 * fifo);
  sendCtrl = new (memory_) FifoCtrl();
  sendSlots = memory_ + ctrl;
  recvCtrl = new (memory_ + fifo) FifoCtrl();
  recvSlots = memory_ + fifo + ctrl;
}

SocketLink::~SocketLink() {
  for (int& fd : sendFds)
    if (fd >= 0) close(fd), fd = -1;
  for (int& fd : recvFds)
    if (fd >= 0) close(fd), fd = -1;
  sendCtrl->~FifoCtrl();
  recvCtrl->~FifoCtrl();
  free(memory_);
}

void SocketLink::sendTaskDone(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  ++sendDone_[seq % uint64_t(nslots)];
  const uint64_t tail = sendCtrl->tail.load(std::memory_order_acquire);
  const int nsocks = int(sendFds.size());
  uint64_t h = sendHead_;
  while (h < tail) {
    const int i = int(h % uint64_t(nslots));
    if (sendDone_[i] != taskCount(sendCtrl->meta[i].bytes, nsocks)) break;
    sendDone_[i] = 0;
    ++h;
  }
  if (h != sendHead_) {
    sendHead_ = h;
    sendCtrl->head.store(h, std::memory_order_release);  // the slots are the rank's again
  }
}

bool SocketLink::sendMeta(uint64_t seq, SlotMeta* m) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (seq < sendHead_) return false;
  *m = sendCtrl->meta[seq % uint64_t(nslots)];
  return true;
}

bool SocketLink::drained() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sendHead_ == sendCtrl->tail.load(std::memory_order_acquire);
}

bool SocketLink::recvRegister(const FrameHeader& h, std::string* why) {
  std::lock_guard<std::mutex> lock(mu_);
  RecvSlot& s = recvSlot_[h.seq % uint64_t(nslots)];
  if (s.seq == UINT64_MAX) {
    s.seq = h.seq;
    s.bytes = h.bytes;
    s.tag = h.tag;
    s.msgBytes = h.msgBytes;
    s.ntasks = h.ntasks;
    s.got = 0;
    return true;
  }
  if (s.seq != h.seq) {
    *why = "message " + std::to_string(h.seq) + " arrived for a slot still holding message " +
           std::to_string(s.seq);
    return false;
  }
  if (s.bytes != h.bytes || s.tag != h.tag || s.msgBytes != h.msgBytes || s.ntasks != h.ntasks) {
    *why = "the tasks of message " + std::to_string(h.seq) + " disagree on its size or tag";
    return false;
  }
  return true;
}

void SocketLink::recvTaskDone(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  ++recvSlot_[seq % uint64_t(nslots)].got;
  uint64_t t = recvTail_.load(std::memory_order_relaxed);
  const uint64_t start = t;
  for (;;) {
    RecvSlot& s = recvSlot_[t % uint64_t(nslots)];
    if (s.seq != t || s.got != s.ntasks) break;
    SlotMeta& m = recvCtrl->meta[t % uint64_t(nslots)];
    m.bytes = s.bytes;
    m.tag = s.tag;
    m.msgBytes = s.msgBytes;
    s = RecvSlot();
    ++t;
  }
  if (t != start) {
    recvTail_.store(t, std::memory_order_release);
    recvCtrl->tail.store(t, std::memory_order_release);  // the rank may read the slots now
  }
}

void SocketLink::markLost(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (lost_.load(std::memory_order_relaxed)) return;
  why_ = why;
  lost_.store(true, std::memory_order_release);
  FCCL_INFO(kLogNet, "socket: %s", why.c_str());
}

void SocketLink::recvLaneClosed(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (++recvClosed_ < recvFds.size()) return;
  }
  markLost(why);
}

std::string SocketLink::lostWhy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return why_;
}

// ---- Lane ----

bool Lane::step() { return eof ? false : send ? stepSend() : stepRecv(); }

void Lane::fail(const char* what, int err) {
  char buf[256];
  if (err == 0 && !send && !haveHdr && rxBeg == rxEnd) {
    // An orderly close between frames: what the peer sent before it is all here.
    eof = true;
    snprintf(buf, sizeof(buf), "%s closed its connections", link->name.c_str());
    link->recvLaneClosed(buf);
    return;
  }
  if (err == 0)
    snprintf(buf, sizeof(buf), "%s closed the connection in the middle of a message (socket %d of %d)",
             link->name.c_str(), index, nsocks);
  else if (err == ECONNRESET || err == EPIPE)
    snprintf(buf, sizeof(buf), "%s closed the connection (%s socket %d of %d)", link->name.c_str(), what,
             index, nsocks);
  else
    snprintf(buf, sizeof(buf), "socket error %s %s (socket %d of %d): %s", what, link->name.c_str(), index,
             nsocks, strerror(err));
  link->markLost(buf);
}

bool Lane::stepSend() {
  bool moved = false;
  const uint64_t nslots = uint64_t(link->nslots);
  for (;;) {
    if (!busy) {
      const uint64_t tail = link->sendCtrl->tail.load(std::memory_order_acquire);
      while (seq < tail && !busy) {
        SlotMeta m;
        if (!link->sendMeta(seq, &m)) {
          ++seq;  // complete without a task on this socket
          continue;
        }
        const int nt = taskCount(m.bytes, nsocks);
        const int j = int((uint64_t(index) + uint64_t(nsocks) - seq % uint64_t(nsocks)) % uint64_t(nsocks));
        if (j >= nt) {
          ++seq;  // no task of this message on this socket
          continue;
        }
        const size_t tb = taskBytes(m.bytes, nsocks), off = size_t(j) * tb;
        hdr = FrameHeader{};
        hdr.task = uint16_t(j);
        hdr.ntasks = uint16_t(nt);
        hdr.seq = seq;
        hdr.bytes = m.bytes;
        hdr.offset = uint32_t(off);
        hdr.len = uint32_t(m.bytes == 0 ? 0 : (m.bytes - off < tb ? m.bytes - off : tb));
        hdr.tag = m.tag;
        hdr.msgBytes = m.msgBytes;
        frameSeal(&hdr);
        payload = link->sendSlots + (seq % nslots) * link->slotBytes + off;
        done = 0;
        busy = true;
      }
      if (!busy) return moved;
    }
    const size_t total = sizeof(hdr) + hdr.len;
    iovec iov[2];
    int n = 0;
    if (done < sizeof(hdr)) iov[n++] = {reinterpret_cast<char*>(&hdr) + done, sizeof(hdr) - done};
    const size_t pdone = done > sizeof(hdr) ? done - sizeof(hdr) : 0;
    if (hdr.len > pdone) iov[n++] = {const_cast<char*>(payload) + pdone, hdr.len - pdone};
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = size_t(n);
    const ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) fail("sending to", errno);
      return moved;
    }
    done += size_t(r);
    moved = true;
    if (done == total) {
      busy = false;
      link->sendTaskDone(seq);
      ++seq;
    }
  }
}

int Lane::fill(bool* drained) {
  if (!rx) rx.reset(new char[kRxBytes]);
  if (rxBeg == rxEnd) {
    rxBeg = rxEnd = 0;
  } else if (rxBeg > 0) {
    memmove(rx.get(), rx.get() + rxBeg, rxEnd - rxBeg);
    rxEnd -= rxBeg;
    rxBeg = 0;
  }
  const size_t want = kRxBytes - rxEnd;
  const ssize_t r = recv(fd, rx.get() + rxEnd, want, MSG_DONTWAIT);
  if (r == 0) return fail("receiving from", 0), -1;
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return fail("receiving from", errno), -1;
    return 0;
  }
  rxEnd += size_t(r);
  *drained = size_t(r) < want;
  return 1;
}

bool Lane::stepRecv() {
  bool moved = false;
  // A read came back short: the socket held no more, so do not spend a recv to hear EAGAIN (the
  // next step, or poll() while the helper sleeps, sees what comes next).
  bool drained = false;
  const uint64_t nslots = uint64_t(link->nslots);
  for (;;) {
    if (!haveHdr) {
      if (rxEnd - rxBeg < sizeof(hdr)) {
        if (drained) return moved;
        const int f = fill(&drained);
        if (f <= 0) return moved;
        moved = true;
        continue;
      }
      memcpy(&hdr, rx.get() + rxBeg, sizeof(hdr));
      rxBeg += sizeof(hdr);
      std::string why;
      if (!frameCheck(hdr, index, nsocks, link->slotBytes, link->recvTail(), lastSeq, &why)) {
        link->markLost("malformed frame from " + link->name + " on socket " + std::to_string(index) + ": " +
                       why);
        return moved;
      }
      haveHdr = true;
      dst = nullptr;
      payGot = 0;
    }
    if (dst == nullptr) {
      // The slot is free once the rank released the message nslots before it.
      if (hdr.seq >= link->recvCtrl->head.load(std::memory_order_acquire) + nslots) return moved;
      std::string why;
      if (!link->recvRegister(hdr, &why)) {
        link->markLost("malformed frame from " + link->name + ": " + why);
        return moved;
      }
      dst = link->recvSlots + (hdr.seq % nslots) * link->slotBytes + hdr.offset;
    }
    while (payGot < hdr.len) {
      // What rx holds first; then a large rest straight into the slot, a small one through rx
      // (which brings the next header with it).
      const size_t held = std::min(rxEnd - rxBeg, size_t(hdr.len) - payGot);
      if (held > 0) {
        memcpy(dst + payGot, rx.get() + rxBeg, held);
        rxBeg += held;
        payGot += held;
        continue;
      }
      if (drained) return moved;
      const size_t want = hdr.len - payGot;
      if (want < kRxBytes) {
        if (fill(&drained) <= 0) return moved;
        moved = true;
        continue;
      }
      const ssize_t r = recv(fd, dst + payGot, want, MSG_DONTWAIT);
      if (r == 0) return fail("receiving from", 0), moved;
      if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) fail("receiving from", errno);
        return moved;
      }
      payGot += size_t(r);
      drained = size_t(r) < want;
      moved = true;
    }
    haveHdr = false;
    dst = nullptr;
    lastSeq = hdr.seq;
    link->recvTaskDone(hdr.seq);
  }
}

uint64_t Lane::wakeWhen() const {
  // Send: the FIFO tail that brings a new message; receive: the FIFO head that frees the slot.
  if (send) return busy ? UINT64_MAX : seq + 1;
  if (haveHdr && dst == nullptr) return hdr.seq - uint64_t(link->nslots) + 1;
  return UINT64_MAX;
}

bool Lane::hiddenWork() const {
  const uint64_t w = wakeWhen();
  return w != UINT64_MAX && wakeCounter()->load(std::memory_order_acquire) >= w;
}

bool Lane::expected() const {
  if (send || haveHdr || rxBeg != rxEnd) return true;
  return int(link->recvTail() % uint64_t(nsocks)) == index;
}

short Lane::pollEvents() const {
  if (eof) return 0;
  if (send) return busy ? POLLOUT : 0;
  return (!haveHdr || dst != nullptr) ? POLLIN : 0;
}

// ---- SocketHelpers ----

void SocketHelpers::start(std::vector<Lane>* lanes, int nthreads, int rank) {
  rank_ = rank;
  for (int t = 0; t < nthreads; ++t) helpers_.push_back(std::make_unique<Helper>());
  for (Lane& l : *lanes) helpers_[size_t(l.index % nthreads)]->lanes.push_back(&l);
  for (auto& h : helpers_) {
    h->wakeWhen.reset(new std::atomic<uint64_t>[h->lanes.size()]);
    for (size_t i = 0; i < h->lanes.size(); ++i) h->wakeWhen[i].store(UINT64_MAX);
    h->wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    Helper* raw = h.get();
    h->thread = std::thread([this, raw] { loop(raw); });
  }
}

void SocketHelpers::stop() {
  stop_.store(true);
  for (auto& h : helpers_) {
    if (h->wakeFd >= 0) {
      uint64_t one = 1;
      (void)!write(h->wakeFd, &one, sizeof(one));
    }
    if (h->thread.joinable()) h->thread.join();
    if (h->wakeFd >= 0) close(h->wakeFd), h->wakeFd = -1;
  }
  helpers_.clear();
}

bool SocketHelpers::ring() {
  bool rang = false;
  for (auto& h : helpers_) {
    if (!h->sleeping.load(std::memory_order_seq_cst)) continue;
    for (size_t i = 0; i < h->lanes.size(); ++i) {
      const uint64_t w = h->wakeWhen[i].load(std::memory_order_acquire);
      if (w == UINT64_MAX || h->lanes[i]->wakeCounter()->load(std::memory_order_acquire) < w) continue;
      uint64_t one = 1;
      (void)!write(h->wakeFd, &one, sizeof(one));
      rang = true;
      break;
    }
  }
  return rang;
}

bool SocketHelpers::drive() {
  bool moved = false;
  for (auto& h : helpers_) {
    std::unique_lock<std::mutex> lock(h->mu, std::try_to_lock);
    if (!lock.owns_lock()) continue;
    const bool asleep = h->sleeping.load(std::memory_order_acquire);
    for (size_t i = 0; i < h->lanes.size(); ++i) {
      Lane* l = h->lanes[i];
      if (l->link->lost()) continue;
      // One recv per poll of the wait, on the socket the next message comes by (2 sockets a
      // direction; 2 hosts x 1 rank, 8 B allreduce: 6.7-6.9 -> 6.2-6.7 us, Open MPI 6.5-6.9).
      if (l->expected()) moved |= l->step();
      // Keep a sleeping helper's thresholds current, so ring() wakes it only for work the rank
      // left it (a message stopped halfway: at once), not for what the rank already moved
      // (every call's kick() woke it: 2 hosts x 1 rank, 8 B allreduce 10-12 -> see progress.cc).
      if (asleep) h->wakeWhen[i].store(l->send && l->busy ? 0 : l->wakeWhen(), std::memory_order_release);
    }
  }
  return moved;
}

void SocketHelpers::loop(Helper* h) {
  logSetRank(rank_);
  std::vector<pollfd> fds;
  // Spin (yielding) only for kSpinNs after work moved; from start or after a wake-up that finds
  // nothing to do, sleep at once: a spinning helper takes turns on the core of the rank, which
  // drives small messages itself (2 hosts x 1 rank, 8 B allreduce, 50 iterations right after
  // init: 9.0-10.0 -> 7.5-8.0 us).
  int64_t quietSince = nowNs() - kSpinNs;
  std::unique_lock<std::mutex> lock(h->mu, std::defer_lock);
  while (!stop_.load(std::memory_order_relaxed)) {
    bool moved = false;
    // The rank is stepping our lanes (drive): let it, and do not sleep on the lock.
    if (!lock.try_lock()) {
      sched_yield();
      continue;
    }
    for (Lane* l : h->lanes)
      if (!l->link->lost()) moved |= l->step();
    lock.unlock();
    if (moved) {
      quietSince = 0;
      continue;
    }
    // Nothing moved: give the core away at once. The rank thread often shares this core (one
    // core per rank is the usual binding), and every round without a yield delays it.
    const int64_t now = nowNs();
    if (quietSince == 0) quietSince = now;
    if (now - quietSince < kSpinNs) {
      sched_yield();  // the rank thread may be waiting for this core
      continue;
    }
    // Sleep. Publish what would wake us (for ring()), then look once more before poll().
    lock.lock();
    for (size_t i = 0; i < h->lanes.size(); ++i)
      h->wakeWhen[i].store(h->lanes[i]->link->lost() ? UINT64_MAX : h->lanes[i]->wakeWhen(),
                           std::memory_order_release);
    h->sleeping.store(true, std::memory_order_seq_cst);
    bool hidden = false;
    for (Lane* l : h->lanes) hidden |= !l->link->lost() && l->hiddenWork();
    if (!hidden && !stop_.load()) {
      fds.clear();
      for (Lane* l : h->lanes) {
        const short ev = l->link->lost() ? 0 : l->pollEvents();
        if (ev != 0) fds.push_back({l->fd, ev, 0});
      }
      fds.push_back({h->wakeFd, POLLIN, 0});
      lock.unlock();
      poll(fds.data(), fds.size(), kSleepPollMs);
      lock.lock();
      uint64_t v;
      (void)!read(h->wakeFd, &v, sizeof(v));
    }
    h->sleeping.store(false, std::memory_order_relaxed);
    lock.unlock();
    quietSince = nowNs() - kSpinNs;
  }
}

}  // namespace fccl
