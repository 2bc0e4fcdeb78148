// soccr_batch: runs a vector of kernel calls that daemon/kernel/native.ts (KernelBatch) prepared, in one FFI
// call. Every call through ffi-rs costs microseconds, the kernel calls themselves a fraction of that:
// saving or rebuilding a connection takes about twenty of them, so they go down in one crossing. The
// logic stays in TypeScript; this file only executes, in order, and writes back each call's result
// and errno. Pure C, no dependencies; built at install (native/build.js) into build/libsoccr_batch.so.
//
// A batch is a header record (the op count) and the op records, 128 bytes each (layout below, mirrored
// in daemon/kernel/native.ts). Ops belong to
// groups (one per socket, or one for the whole batch); a group's ops are contiguous. When an op fails,
// the rest of its group is skipped, except ops flagged ALWAYS (cleanup such as "no queue selected" or
// "back to the daemon's namespace"); other groups go on.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SOCCR_BATCH_ABI 2

enum {
  OP_SETSOCKOPT = 1,
  OP_GETSOCKOPT = 2,
  OP_IOCTL = 3, // int-valued request (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD): the int lands in data
  OP_RECV = 4,
  OP_SEND = 5,
  OP_SOCKET = 6,
  OP_BIND = 7,
  OP_CONNECT = 8,
  OP_SHUTDOWN = 9,
  OP_SENDTO = 10, // destination address in data, its length in a2
  OP_CLOSE = 11,
  OP_GETSOCKNAME = 12,
  OP_SETNS = 13,
  OP_PIDFD_GETFD = 14,
  OP_FSTAT_INO = 15, // st_ino lands in data (u64)
  OP_KCMP_FILE = 16, // kcmp(a3 = our pid, a1 = their pid, KCMP_FILE, fd, a2): 0 when both name one open file
};

enum {
  F_ALWAYS = 1,   // runs even when its group stopped earlier
  F_NOSTOP = 2,   // a failure is recorded but does not stop the group (an option a kernel may lack)
  F_SEND_ALL = 4, // send: repeat until every byte is in, halving the chunk when the kernel refuses one
};

enum { ST_NOT_RUN = 0, ST_OK = 1, ST_FAILED = 2, ST_SKIPPED = 3 };

enum { BASE_INLINE = -1, BASE_ABSOLUTE = 0 }; // 1, 2: the buffer arguments b1, b2

struct soccr_op {
  int32_t code;
  int32_t fd;
  int32_t a1; // level | request | flags (recv, send, sendto) | how | domain | nstype | target fd
  int32_t a2; // name | type | destination length (sendto)
  int32_t a3; // protocol
  uint32_t len; // bytes at the op's memory (socklen for getsockopt, getsockname)
  uint64_t addr; // absolute address, or offset into the buffer argument `base`
  int32_t base;
  int32_t expect; // >= 0: any other non-negative result is a failure (with err 0)
  int32_t group;
  int32_t flags;
  int32_t fd_from; // >= 0: the fd is the result of that earlier op
  int32_t status; // out
  int64_t result; // out: the call's return value (bytes sent for SEND_ALL)
  int32_t err; // out: errno when failed
  uint32_t out_len; // out: socklen the kernel wrote back
  uint8_t data[56]; // inline memory for small values
};
_Static_assert(sizeof(struct soccr_op) == 128, "record layout shared with daemon/kernel/native.ts");
_Static_assert(offsetof(struct soccr_op, data) == 72, "record layout shared with daemon/kernel/native.ts");

int soccr_batch_abi(void) { return SOCCR_BATCH_ABI; }

static int64_t send_all(int fd, const char *p, uint64_t len, int flags, int *err) {
  uint64_t off = 0, chunk = len;
  *err = 0;
  for (long attempts = 0; off < len; attempts++) {
    if (attempts > 1000000) return (int64_t)off;
    size_t want = chunk < len - off ? chunk : len - off;
    ssize_t n = send(fd, p + off, want, flags);
    if (n > 0) {
      off += (uint64_t)n;
      continue;
    }
    if (chunk > 1024) {
      chunk /= 2;
      continue;
    }
    *err = n < 0 ? errno : 0;
    break;
  }
  return (int64_t)off;
}

static int64_t execute(struct soccr_op *op, int fd, char *mem) {
  socklen_t sl = op->len;
  int64_t r;
  switch (op->code) {
  case OP_SETSOCKOPT:
    return setsockopt(fd, op->a1, op->a2, mem, op->len);
  case OP_GETSOCKOPT:
    r = getsockopt(fd, op->a1, op->a2, mem, &sl);
    op->out_len = sl;
    return r;
  case OP_IOCTL:
    return ioctl(fd, (unsigned long)(uint32_t)op->a1, mem);
  case OP_RECV:
    return recv(fd, mem, op->len, op->a1);
  case OP_SEND:
    if (op->flags & F_SEND_ALL) {
      int e;
      r = send_all(fd, mem, op->len, op->a1, &e);
      if (r != (int64_t)op->len) {
        op->result = r;
        errno = e;
        return -2; // partial: result holds the bytes that went in
      }
      return r;
    }
    return send(fd, mem, op->len, op->a1);
  case OP_SOCKET:
    return socket(op->a1, op->a2, op->a3);
  case OP_BIND:
    return bind(fd, (const struct sockaddr *)mem, op->len);
  case OP_CONNECT:
    return connect(fd, (const struct sockaddr *)mem, op->len);
  case OP_SHUTDOWN:
    return shutdown(fd, op->a1);
  case OP_SENDTO:
    return sendto(fd, mem, op->len, op->a1, (const struct sockaddr *)op->data, (socklen_t)op->a2);
  case OP_CLOSE:
    return close(fd);
  case OP_GETSOCKNAME:
    r = getsockname(fd, (struct sockaddr *)mem, &sl);
    op->out_len = sl;
    return r;
  case OP_SETNS:
    return setns(fd, op->a1);
  case OP_PIDFD_GETFD:
    return syscall(SYS_pidfd_getfd, fd, op->a1, op->a2);
  case OP_FSTAT_INO: {
    struct stat st;
    r = fstat(fd, &st);
    if (r == 0) {
      uint64_t ino = st.st_ino;
      __builtin_memcpy(op->data, &ino, 8);
    }
    return r;
  }
  case OP_KCMP_FILE:
    return syscall(SYS_kcmp, op->a3, op->a1, 0 /* KCMP_FILE */, fd, op->a2);
  default:
    errno = ENOSYS;
    return -1;
  }
}

// Runs the ops that follow the batch's header record, in order: the header's first int32 is their
// count. b1, b2 are the buffers ops may address by offset (base 1, 2). Returns the number of ops that
// failed (skipped ones not counted).
static int run(uint64_t batch, char *b1, char *b2) {
  int32_t count;
  __builtin_memcpy(&count, (void *)(uintptr_t)batch, 4);
  struct soccr_op *ops = (struct soccr_op *)(uintptr_t)(batch + sizeof(struct soccr_op));
  char *bases[3] = {NULL, b1, b2};
  int failed = 0;
  int have_stop = 0;
  int32_t stopped_group = 0;
  for (int32_t i = 0; i < count; i++) {
    struct soccr_op *op = &ops[i];
    if (have_stop && op->group != stopped_group) have_stop = 0;
    op->err = 0;
    op->out_len = 0;
    if (have_stop && !(op->flags & F_ALWAYS)) {
      op->status = ST_SKIPPED;
      op->result = -1;
      continue;
    }
    int fd = op->fd;
    if (op->fd_from >= 0) {
      if (op->fd_from >= i || ops[op->fd_from].status != ST_OK) {
        op->status = ST_FAILED;
        op->result = -1;
        op->err = EBADF;
        failed++;
        if (!(op->flags & F_NOSTOP)) have_stop = 1, stopped_group = op->group;
        continue;
      }
      fd = (int)ops[op->fd_from].result;
    }
    char *mem;
    if (op->base == BASE_INLINE) mem = (char *)op->data;
    else if (op->base == BASE_ABSOLUTE) mem = (char *)(uintptr_t)op->addr;
    else if (op->base >= 1 && op->base <= 2 && bases[op->base]) mem = bases[op->base] + op->addr;
    else mem = NULL;
    errno = 0;
    int64_t r = execute(op, fd, mem);
    // A partial SEND_ALL (-2) left its byte count in result already.
    if (r != -2) op->result = r;
    if (r >= 0 && (op->expect < 0 || r == op->expect)) {
      op->status = ST_OK;
      continue;
    }
    op->status = ST_FAILED;
    op->err = r < 0 ? errno : 0;
    failed++;
    if (!(op->flags & F_NOSTOP)) have_stop = 1, stopped_group = op->group;
  }
  return failed;
}

// Two entry points: each buffer argument costs ffi-rs microseconds to convert, so most batches pass
// none and address their memory by absolute address.
int soccr_batch_run(uint64_t batch) { return run(batch, NULL, NULL); }
int soccr_batch_run_with(uint64_t batch, char *b1, char *b2) { return run(batch, b1, b2); }
