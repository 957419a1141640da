/*
 * l2cap_shim.c: run BlueZ's gatttool against a peripheral written in Python.
 *
 * Loaded with LD_PRELOAD, it turns gatttool's one L2CAP socket
 * (AF_BLUETOOTH, SOCK_SEQPACKET, BTPROTO_L2CAP) into an AF_UNIX SOCK_SEQPACKET
 * socket connected to $PYGATT_ATT_DIR/<ADDRESS>-<public|random>, where
 * pygatt.testing.att.server listens for that peripheral. Each packet carries one
 * ATT PDU, as on the ATT channel. The Bluetooth-only socket calls (bind,
 * setsockopt, getsockopt, getsockname, getpeername) are answered here so that
 * gatttool sees an LE link on the ATT channel (CID 4).
 *
 * Build: gcc -shared -fPIC -o l2cap_shim.so l2cap_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define AF_BT 31
#define PROTO_L2CAP 0
#define SOL_BT 274
#define OPT_SECURITY 4
#define OPT_SNDMTU 12
#define OPT_RCVMTU 13
#define L2CAP_MTU 672
#define ATT_CID 4
#define MAX_FDS 64

/* Our sockets: fd -> security level (0 = not ours). */
static unsigned char levels[MAX_FDS];
static unsigned char peer_type[MAX_FDS];

static int ours(int fd) { return fd >= 0 && fd < MAX_FDS && levels[fd] != 0; }

#define REAL(name, ret, ...) \
    static ret (*real_##name)(__VA_ARGS__); \
    if (!real_##name) real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

int socket(int domain, int type, int protocol) {
    REAL(socket, int, int, int, int);
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (domain != AF_BT || base != SOCK_SEQPACKET || protocol != PROTO_L2CAP)
        return real_socket(domain, type, protocol);
    int fd = real_socket(AF_UNIX, type, 0);
    if (fd >= MAX_FDS) {
        REAL(close, int, int);
        real_close(fd);
        errno = EMFILE;
        return -1;
    }
    if (fd >= 0) { levels[fd] = 1; peer_type[fd] = 1; }
    return fd;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    REAL(bind, int, int, const struct sockaddr *, socklen_t);
    return ours(fd) ? 0 : real_bind(fd, addr, len);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    REAL(connect, int, int, const struct sockaddr *, socklen_t);
    if (!ours(fd)) return real_connect(fd, addr, len);
    const unsigned char *raw = (const unsigned char *)addr;  /* sockaddr_l2: bdaddr at 4, type at 12 */
    const char *dir = getenv("PYGATT_ATT_DIR");
    struct sockaddr_un target;
    memset(&target, 0, sizeof target);
    target.sun_family = AF_UNIX;
    if (dir == NULL || len < 13) { errno = EINVAL; return -1; }
    peer_type[fd] = raw[12];
    int n = snprintf(target.sun_path, sizeof target.sun_path, "%s/%02X:%02X:%02X:%02X:%02X:%02X-%s", dir,
                     raw[9], raw[8], raw[7], raw[6], raw[5], raw[4], raw[12] == 2 ? "random" : "public");
    if (n < 0 || (size_t)n >= sizeof target.sun_path) { errno = ENAMETOOLONG; return -1; }
    int rc = real_connect(fd, (struct sockaddr *)&target, sizeof target);
    if (rc < 0 && errno == ENOENT) errno = ECONNREFUSED;  /* nobody there: as a peer that does not answer */
    return rc;
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    REAL(setsockopt, int, int, int, int, const void *, socklen_t);
    if (!ours(fd) || level == SOL_SOCKET) return real_setsockopt(fd, level, name, value, len);
    if (level == SOL_BT && name == OPT_SECURITY && len >= 1 && *(const unsigned char *)value > 0)
        levels[fd] = *(const unsigned char *)value;
    return 0;
}

int getsockopt(int fd, int level, int name, void *value, socklen_t *len) {
    REAL(getsockopt, int, int, int, int, void *, socklen_t *);
    if (!ours(fd)) return real_getsockopt(fd, level, name, value, len);
    if (level == SOL_SOCKET) {
        if ((name == SO_DOMAIN || name == SO_PROTOCOL) && *len >= (socklen_t)sizeof(int)) {
            *(int *)value = name == SO_DOMAIN ? AF_BT : PROTO_L2CAP;
            *len = sizeof(int);
            return 0;
        }
        return real_getsockopt(fd, level, name, value, len);
    }
    memset(value, 0, *len);
    if (level == SOL_BT && (name == OPT_SNDMTU || name == OPT_RCVMTU) && *len >= 2) {
        uint16_t mtu = L2CAP_MTU;
        memcpy(value, &mtu, 2);
        *len = 2;
    } else if (level == SOL_BT && name == OPT_SECURITY && *len >= 1) {
        *(unsigned char *)value = levels[fd];
    }
    return 0;
}

static int l2cap_name(int fd, struct sockaddr *addr, socklen_t *len) {
    unsigned char raw[14];
    memset(raw, 0, sizeof raw);
    raw[0] = AF_BT;           /* l2_family, little-endian */
    raw[10] = ATT_CID;        /* l2_cid, little-endian */
    raw[12] = peer_type[fd];  /* l2_bdaddr_type: 1 LE public, 2 LE random */
    memcpy(addr, raw, *len < sizeof raw ? *len : sizeof raw);
    *len = sizeof raw;
    return 0;
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len) {
    REAL(getsockname, int, int, struct sockaddr *, socklen_t *);
    return ours(fd) ? l2cap_name(fd, addr, len) : real_getsockname(fd, addr, len);
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *len) {
    REAL(getpeername, int, int, struct sockaddr *, socklen_t *);
    return ours(fd) ? l2cap_name(fd, addr, len) : real_getpeername(fd, addr, len);
}

int close(int fd) {
    REAL(close, int, int);
    if (ours(fd)) levels[fd] = 0;
    return real_close(fd);
}
