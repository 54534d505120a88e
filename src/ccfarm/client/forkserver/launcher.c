/*
 * ccfarm's native launcher: the per-job `ccfarm` process without a Python
 * interpreter to start (~7 ms of CPU per compile job).
 *
 * It does what `ccfarm.client.forkserver.forward.forward` does: hand the job
 * (argv, cwd, umask, environment, stdin/stdout/stderr) to the user's warm
 * fork server and exit the way the job ended. Everything else -- no fork server yet,
 * a fork server that declines, any doubt -- goes to the Python wrapper by exec,
 * with the same arguments, which runs the job itself and starts a fork server.
 * The wire format and the socket name are those of wire.py; the
 * Python interpreter and install location are fixed when this is built
 * (`python -m ccfarm.client.forkserver.launcher install`).
 *
 * CCFARM_LAUNCHER_DEBUG=1 says on stderr which way each job went.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CCFARM_PYTHON
#error "build with -DCCFARM_PYTHON=... -DCCFARM_PACKAGE=..."
#endif

extern char **environ;

static int debug;

struct buf {
    char *data;
    size_t len, cap;
};

static int put(struct buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + len)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static int put_field(struct buf *b, const char *s)
{
    return put(b, s, strlen(s) + 1); /* with its NUL terminator */
}

/* Run the job in the Python wrapper instead (it also starts a fork server). */
static void fallback(char **argv, const char *why)
{
    if (debug)
        fprintf(stderr, "ccfarm-launcher: python (%s)\n", why);
    size_t argc = 0;
    while (argv[argc])
        argc++;
    char **args = calloc(argc + 4, sizeof(char *));
    if (!args)
        _exit(101);
    args[0] = CCFARM_PYTHON;
    args[1] = "-m";
    args[2] = "ccfarm.client.main";
    for (size_t i = 1; i < argc; i++)
        args[i + 2] = argv[i];
    setenv("CCFARM_ARGV0", argv[0], 1); /* masquerade links are told apart by it */
    execv(CCFARM_PYTHON, args);
    fprintf(stderr, "ccfarm: cannot run %s: %s\n", CCFARM_PYTHON, strerror(errno));
    _exit(101);
}

/* wire.server_key and socket_name, byte for byte. */
static int socket_name(struct sockaddr_un *addr, socklen_t *len)
{
    const char *state = getenv("CCFARM_DIR");
    if (!state || !*state)
        state = getenv("DISTCC_DIR");
    char home_state[4096];
    if (!state || !*state) {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return -1; /* Python asks the password database: let it */
        if ((size_t)snprintf(home_state, sizeof home_state, "%s/.distcc", home)
            >= sizeof home_state)
            return -1;
        state = home_state;
    }
    /* Python normalises the path (os.path.abspath); only plain ones here */
    size_t n = strlen(state);
    if (state[0] != '/' || strstr(state, "//") || strstr(state, "/./") || strstr(state, "/../")
        || (n > 1 && state[n - 1] == '/') || (n >= 2 && strcmp(state + n - 2, "/.") == 0)
        || (n >= 3 && strcmp(state + n - 3, "/..") == 0))
        return -1;

    uint64_t h = 0xcbf29ce484222325ULL;
#define FNV(p, l)                                                   \
    for (size_t i_ = 0; i_ < (l); i_++) {                           \
        h = (h ^ (unsigned char)(p)[i_]) * 0x100000001b3ULL;        \
    }
    FNV(state, n);
    FNV("", 1);
    FNV(CCFARM_PYTHON, strlen(CCFARM_PYTHON));
    FNV("", 1);
    FNV(CCFARM_PACKAGE, strlen(CCFARM_PACKAGE));
    FNV("", 1);
    int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char chunk[4096];
        ssize_t got;
        while ((got = read(fd, chunk, sizeof chunk)) > 0)
            FNV(chunk, (size_t)got);
        close(fd);
        if (got < 0)
            return -1;
    }
#undef FNV
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    int used = snprintf(addr->sun_path + 1, sizeof addr->sun_path - 1,
                        "ccfarm-forkserver/%u/%016llx", (unsigned)getuid(), (unsigned long long)h);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)used);
    return 0;
}

/* A connected socket to the fork server at addr, or -1. */
static int connect_server(const struct sockaddr_un *addr, socklen_t len)
{
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock >= 0 && connect(sock, (const struct sockaddr *)addr, len) == 0)
        return sock;
    if (sock >= 0)
        close(sock);
    return -1;
}

/* The fork server's process: detached, stdio on /dev/null, no other descriptors. */
static pid_t spawn_server(const struct sockaddr_un *addr)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null < 0)
        _exit(127);
    for (int i = 0; i < 3; i++)
        dup2(null, i);
    for (int fd = 3; fd < 1024; fd++) /* make's jobserver pipes, among others */
        close(fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *args[] = {CCFARM_PYTHON, "-m", "ccfarm.client.forkserver.server", (char *)addr->sun_path + 1, NULL};
    execv(CCFARM_PYTHON, args);
    _exit(127);
}

/*
 * No fork server listens: the first job to take the start lock (an abstract name
 * beside the fork server's, freed when its holder exits) starts one; every job
 * then waits for the fork server's name, which it binds before importing
 * anything. The wait ends early when the started fork server exits, or when the
 * starter is gone without a fork server; the caller falls back to Python then.
 */
static int start_server(const struct sockaddr_un *addr, socklen_t len)
{
    struct sockaddr_un lock = *addr;
    socklen_t lock_len = len;
    const char suffix[] = "/start";
    if (lock_len + sizeof suffix - 1 > sizeof lock)
        return -1;
    memcpy((char *)&lock + lock_len, suffix, sizeof suffix - 1);
    lock_len += (socklen_t)(sizeof suffix - 1);
    int lock_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lock_fd < 0)
        return -1;
    pid_t server = -1;
    if (bind(lock_fd, (struct sockaddr *)&lock, lock_len) == 0) {
        server = spawn_server(addr);
        if (server < 0) {
            close(lock_fd);
            return -1;
        }
    }
    int sock = -1;
    long delay_us = 500;
    for (long waited_us = 0; waited_us < 10L * 1000 * 1000; waited_us += delay_us) {
        sock = connect_server(addr, len);
        if (sock >= 0)
            break;
        if (server > 0 && waitpid(server, NULL, WNOHANG) == server)
            break; /* it lost a race for the name or could not start */
        if (server < 0 && bind(lock_fd, (struct sockaddr *)&lock, lock_len) == 0) {
            sock = connect_server(addr, len); /* the starter left: a fork server, or none */
            break;
        }
        struct timespec pause = {0, delay_us * 1000};
        nanosleep(&pause, NULL);
        if (delay_us < 16000)
            delay_us *= 2;
    }
    close(lock_fd);
    if (debug && sock >= 0)
        fprintf(stderr, "ccfarm-launcher: %s\n", server > 0 ? "started the fork server" : "waited for the fork server");
    return sock;
}

static int send_all(int sock, const char *data, size_t len)
{
    while (len) {
        ssize_t sent = send(sock, data, len, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += sent;
        len -= (size_t)sent;
    }
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    debug = getenv("CCFARM_LAUNCHER_DEBUG") && strcmp(getenv("CCFARM_LAUNCHER_DEBUG"), "1") == 0;
    const char *setting = getenv("CCFARM_HELPER");
    if ((setting && strcmp(setting, "0") == 0) || getenv("CCFARM_SAFEGUARD"))
        fallback(argv, "fork server off");
    for (int i = 0; i < 3; i++)
        if (fcntl(i, F_GETFD) < 0)
            fallback(argv, "a standard descriptor is closed");

    struct sockaddr_un addr;
    socklen_t addr_len;
    if (socket_name(&addr, &addr_len) < 0)
        fallback(argv, "state directory not plain");
    int sock = connect_server(&addr, addr_len);
    if (sock < 0)
        sock = start_server(&addr, addr_len);
    if (sock < 0)
        fallback(argv, "no fork server");
    struct ucred peer;
    socklen_t peer_len = sizeof peer;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) < 0 || peer.uid != getuid())
        fallback(argv, "not our fork server");

    /* the request: wire.encode_request */
    struct buf payload = {0};
    char number[32];
    int count = 0;
    while (argv[count])
        count++;
    snprintf(number, sizeof number, "%d", count);
    int bad = put_field(&payload, number);
    for (int i = 0; i < count; i++)
        bad |= put_field(&payload, argv[i]);
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        fallback(argv, "no working directory");
    bad |= put_field(&payload, cwd);
    mode_t mask = umask(0);
    umask(mask);
    snprintf(number, sizeof number, "%o", (unsigned)mask);
    bad |= put_field(&payload, number);
    for (char **e = environ; *e; e++)
        if (strchr(*e, '='))
            bad |= put_field(&payload, *e);
    if (bad || payload.len > (8u << 20))
        fallback(argv, "request too large");
    char header[17];
    snprintf(header, sizeof header, "CCFH0001%08zx", payload.len);

    int fds[3] = {0, 1, 2};
    union {
        char space[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {header, 16};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
    ssize_t sent;
    do
        sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent < 0 || send_all(sock, header + sent, 16 - (size_t)sent) < 0
        || send_all(sock, payload.data, payload.len) < 0)
        fallback(argv, "fork server gone before the job started");

    /* the job runs there now; its end: wire.encode_reply */
    char reply[10];
    size_t got = 0;
    while (got < 9) {
        ssize_t r = recv(sock, reply + got, 9 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    reply[got] = '\0';
    if (got == 1 && reply[0] == 'F')
        fallback(argv, "fork server declined");
    if (got != 9 || (reply[0] != 'X' && reply[0] != 'S'))
        fallback(argv, "no answer from the fork server");
    for (int i = 1; i < 9; i++)
        if (!strchr("0123456789abcdef", reply[i]))
            fallback(argv, "bad answer from the fork server");
    unsigned long value = strtoul(reply + 1, NULL, 16);
    if (value > 255)
        fallback(argv, "bad answer from the fork server");
    if (debug)
        fprintf(stderr, "ccfarm-launcher: fork server (%s %lu)\n",
                reply[0] == 'X' ? "exit" : "signal", value);
    if (reply[0] == 'X')
        return (int)value;
    signal((int)value, SIG_DFL);
    raise((int)value);
    return 128 + (int)value;
}
