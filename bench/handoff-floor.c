// Floor for the hand-off series of bench/migration.ts: the kernel work of a same-host hand-off, in C,
// on the same old owner's sockets, with nothing else: stop the owner (SIGSTOP through its pidfd, wait
// for state T), take our duplicates of its socket fds (pidfd_getfd + fstat each), pass them to a
// receiver process over a Unix stream socket (16 per sendmsg, each with a line of the daemon's
// length), the receiver counts them and answers one ack line, which ends the freeze. Then everything is
// closed and the owner continued: the connections stay where they were.
//
//   handoff-floor PID LINE_BYTES FD...
//
// Output: one JSON line {"stopUs","takeUs","passUs","freezeUs","fds"}. Build: gcc -O2 -o
// bench/build/handoff-floor bench/handoff-floor.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PER_SEND 16

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what) {
  fprintf(stderr, "handoff-floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static char state_of(int pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int f = open(path, O_RDONLY);
  if (f < 0) return 0;
  ssize_t n = read(f, buf, sizeof buf - 1);
  close(f);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  return p && p[1] && p[2] ? p[2] : 0;
}

// The receiver: takes fds and lines until the end line, then acks; closes everything and exits.
static int receive(int s, int expect) {
  char data[65536];
  char ctl[CMSG_SPACE(PER_SEND * sizeof(int))];
  int got = 0, lines = 0;
  int *fds = malloc(sizeof(int) * (expect + PER_SEND));
  for (;;) {
    struct iovec iov = {data, sizeof data};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
    if (n <= 0) return 1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      memcpy(fds + got, CMSG_DATA(c), k * sizeof(int));
      got += k;
    }
    for (ssize_t i = 0; i < n; i++)
      if (data[i] == '\n') lines++;
    if (lines == expect + 1) break; // every socket line and the end line
  }
  if (got != expect) return 2;
  const char ack[] = "{\"type\":\"ack\"}\n";
  if (send(s, ack, sizeof ack - 1, 0) != (ssize_t)(sizeof ack - 1)) return 3;
  for (int i = 0; i < got; i++) close(fds[i]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: handoff-floor PID LINE_BYTES FD...\n");
    return 2;
  }
  int pid = atoi(argv[1]);
  int line_bytes = atoi(argv[2]);
  int n = argc - 3;
  int *fds = malloc(sizeof(int) * n), *dups = malloc(sizeof(int) * n);
  for (int i = 0; i < n; i++) fds[i] = atoi(argv[3 + i]);
  if (line_bytes < 2) line_bytes = 2;
  char *lines = malloc((size_t)line_bytes * PER_SEND);
  for (int i = 0; i < PER_SEND; i++) {
    memset(lines + (size_t)i * line_bytes, 'x', line_bytes - 1);
    lines[(size_t)(i + 1) * line_bytes - 1] = '\n';
  }

  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) die("pidfd_open");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
  int sndbuf = 64 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  // Both fd tables grown beforehand, as the daemon and the new owner grow theirs.
  int probe = fcntl(0, F_DUPFD_CLOEXEC, n + 256);
  if (probe >= 0) close(probe);
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(sv[0]);
    _exit(receive(sv[1], n));
  }
  close(sv[1]);
  usleep(20000); // the receiver waits in recvmsg

  double t0 = now_us();
  if (syscall(SYS_pidfd_send_signal, pidfd, SIGSTOP, NULL, 0) < 0) die("pidfd_send_signal");
  for (long k = 0; state_of(pid) != 'T'; k++) {
    if (k > 2000000) die("the owner does not stop");
    sched_yield();
  }
  double t1 = now_us();
  for (int i = 0; i < n; i++) {
    dups[i] = (int)syscall(SYS_pidfd_getfd, pidfd, fds[i], 0);
    if (dups[i] < 0) die("pidfd_getfd");
    struct stat st;
    if (fstat(dups[i], &st) < 0) die("fstat");
  }
  double t2 = now_us();
  char ctl[CMSG_SPACE(PER_SEND * sizeof(int))];
  for (int i = 0; i < n; i += PER_SEND) {
    int k = n - i < PER_SEND ? n - i : PER_SEND;
    struct iovec iov = {lines, (size_t)line_bytes * k};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = CMSG_SPACE(k * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(k * sizeof(int));
    memcpy(CMSG_DATA(c), dups + i, k * sizeof(int));
    if (sendmsg(sv[0], &m, 0) != (ssize_t)iov.iov_len) die("sendmsg");
  }
  const char end[] = "{\"type\":\"end\"}\n";
  if (send(sv[0], end, sizeof end - 1, 0) < 0) die("send");
  char ack[64];
  if (recv(sv[0], ack, sizeof ack, 0) <= 0) die("no ack");
  double t3 = now_us();

  for (int i = 0; i < n; i++) close(dups[i]);
  syscall(SYS_pidfd_send_signal, pidfd, SIGCONT, NULL, 0);
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "handoff-floor: the receiver failed (%d)\n", status);
    return 1;
  }
  printf("{\"stopUs\":%.1f,\"takeUs\":%.1f,\"passUs\":%.1f,\"freezeUs\":%.1f,\"fds\":%d}\n", t1 - t0, t2 - t1, t3 - t2, t3 - t0, n);
  return 0;
}
