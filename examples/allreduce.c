/* allreduce.c - the smallest complete fccl program: NRANKS ranks as threads of one process,
 * each joins the communicator with fcclCommInitRank and sums a float buffer with
 * fcclAllReduce; every rank checks the exact result. Prints "OK" and exits 0 on success.
 * Build: cc -std=c99 allreduce.c $(pkg-config --cflags --libs fccl) -lpthread */
#define _POSIX_C_SOURCE 200809L
#include <fccl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NRANKS 2
#define COUNT (1 << 20)

#define CHECK(call)                                                                                     \
  do {                                                                                                  \
    fcclResult_t r_ = (call);                                                                           \
    if (r_ != fcclSuccess) {                                                                            \
      fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, #call, fcclGetErrorString(r_), \
              fcclGetLastError(NULL));                                                                  \
      return (void*)1;                                                                                  \
    }                                                                                                   \
  } while (0)

struct rank_args {
  int rank;
  fcclUniqueId id;
};

static void* run_rank(void* p) {
  const struct rank_args* a = (const struct rank_args*)p;
  fcclComm_t comm;
  float* buf = malloc(COUNT * sizeof(float));
  if (buf == NULL) return (void*)1;
  /* Rank r contributes r+1 at index i scaled by i%7: small integers, so the float sum is exact. */
  for (size_t i = 0; i < COUNT; i++) buf[i] = (float)((a->rank + 1) * (int)(i % 7));

  CHECK(fcclCommInitRank(&comm, NRANKS, a->id, a->rank));
  CHECK(fcclAllReduce(buf, buf, COUNT, fcclFloat, fcclSum, comm, NULL)); /* in place */
  CHECK(fcclCommDestroy(comm));

  const int rankSum = NRANKS * (NRANKS + 1) / 2; /* sum of (r+1) over ranks */
  size_t wrong = 0;
  for (size_t i = 0; i < COUNT; i++)
    if (buf[i] != (float)(rankSum * (int)(i % 7))) wrong++;
  free(buf);
  if (wrong != 0) {
    fprintf(stderr, "rank %d: %zu of %d elements wrong\n", a->rank, wrong, COUNT);
    return (void*)1;
  }
  return NULL;
}

int main(void) {
  struct rank_args args[NRANKS];
  pthread_t threads[NRANKS];
  fcclUniqueId id;
  int version = 0;

  if (fcclGetVersion(&version) != fcclSuccess || fcclGetUniqueId(&id) != fcclSuccess) {
    fprintf(stderr, "fccl setup failed: %s\n", fcclGetLastError(NULL));
    return 1;
  }
  for (int r = 0; r < NRANKS; r++) {
    args[r].rank = r;
    args[r].id = id; /* in a multi-process job: send the id to every rank (MPI_Bcast, a file) */
    if (pthread_create(&threads[r], NULL, run_rank, &args[r]) != 0) return 1;
  }
  int failed = 0;
  for (int r = 0; r < NRANKS; r++) {
    void* res;
    pthread_join(threads[r], &res);
    if (res != NULL) failed = 1;
  }
  if (failed) return 1;
  printf("OK fccl %d: allreduce of %d floats over %d ranks\n", version, COUNT, NRANKS);
  return 0;
}
