// rdma_ports.h - how many RDMA ports of this host are up (InfiniBand, RoCE, iWARP: every device
// the kernel's RDMA core registers), so that FCCL_NET=auto takes UCX between two hosts that both
// have one, as NCCL takes its IB transport, and sockets otherwise.
#pragma once
#include <string>

namespace fccl {

// Active ports over every RDMA device; 0 with *why when there are none. Read from sysfs
// (/sys/class/infiniband/DEV/ports/N/state, the files libibverbs reads too) once per process:
// loading libibverbs and its providers in every process only to count ports would cost init
// time on hosts that have none.
int activeRdmaPorts(std::string* why);
// The same count under another sysfs class directory (tests).
int activeRdmaPortsUnder(const char* root, std::string* why);

}  // namespace fccl
