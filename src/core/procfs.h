/* procfs.h - processes from /proc: which holds a socket inode, who holds a port. */
#ifndef LOOPKIT_CORE_PROCFS_H
#define LOOPKIT_CORE_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define PROCFS_COMM_MAX    64  /* procfs_owner.comm, NUL included (the kernel keeps 16) */
#define PROCFS_USER_MAX    64  /* procfs_owner.user, NUL included */
#define PROCFS_CMDLINE_MAX 256 /* procfs_owner.cmdline, NUL included; longer ones are cut */
#define PROCFS_THREADS_MAX 256 /* --threads bound, every verb that has the flag */

/* The CPUs this process may run on (its affinity: taskset; else the online CPUs; at
 * least 1): the default of every --threads flag. */
unsigned procfs_cpus(void);
/* Descriptors this process holds now (/proc/self/fd); 0 when unreadable. */
unsigned procfs_open_fds(void);

/* A process holding a socket. pid 0 means the process could not be read (another
 * user's process without privileges, or it exited): then only uid and user are set,
 * from the socket's owner. */
struct procfs_owner {
	pid_t pid;
	uint32_t uid;                     /* effective uid of the process */
	char comm[PROCFS_COMM_MAX];       /* /proc/PID/comm; control bytes shown as '?' */
	char user[PROCFS_USER_MAX];       /* user name, or the uid in decimal */
	char cmdline[PROCFS_CMDLINE_MAX]; /* arguments joined by spaces, cut to fit */
};

/* Which process holds which socket inode: the result of one scan of /proc.
 * A socket may have several owners (fork, SCM_RIGHTS), a process many sockets. */
struct procfs_owner_link {
	uint32_t inode;
	pid_t pid;
};

struct procfs_owner_map {
	struct procfs_owner *owners; /* distinct processes, ascending pid */
	size_t nowners;
	struct procfs_owner_link *links; /* ascending inode, then pid */
	size_t nlinks;
};

/* Scans /proc once and records, for each socket inode in inodes[0..n), the processes
 * holding it and their comm, user and cmdline. inodes NULL records every socket found;
 * inodes need not be sorted or unique; inode 0 is ignored. Processes it may not read
 * are skipped silently. On success returns 0; the map owns its arrays, release them
 * with procfs_owner_map_free. On error (no /proc, no memory) returns -1 with the map
 * empty, errno set and err filled (err may be NULL). */
int procfs_owner_map_build(struct procfs_owner_map *map, const uint32_t *inodes, size_t n, char *err,
                           size_t errlen);

/* Stores in out[0..max) pointers into map to the owners of inode, ascending pid.
 * Returns how many were stored (0 when the owner is unknown). */
size_t procfs_owner_map_find(const struct procfs_owner_map *map, uint32_t inode,
                             const struct procfs_owner **out, size_t max);

/* Frees the map's arrays and empties it; safe on an empty or already freed map. */
void procfs_owner_map_free(struct procfs_owner_map *map);

/* Finds the process holding the socket inode with one scan of /proc; when several
 * do, the lowest pid (a forking server's parent). Returns 1 and fills *out when found,
 * 0 with *out zeroed (pid 0) when unknown, -1 with errno set on error. */
int procfs_owner_find(uint32_t inode, struct procfs_owner *out);

/* Fills *out (comm, user, cmdline, effective uid) for the process pid. Returns 1, 0
 * with *out zeroed when it is gone or cannot be read, -1 with errno when /proc cannot
 * be opened. */
int procfs_owner_of_pid(pid_t pid, struct procfs_owner *out);

/* Finds who holds local port `port` in any address and family: processes with a
 * listening TCP socket (proto IPPROTO_TCP), any UDP socket bound to it (IPPROTO_UDP),
 * or either (0). Each process is reported once, ascending pid; sockets whose process
 * cannot be read give one pid-0 entry per socket uid, after the known ones. Stores at
 * most max entries in out and returns how many were stored: 0 when nobody holds the
 * port, -1 with errno set on error. */
int procfs_port_holders(int proto, uint16_t port, struct procfs_owner *out, size_t max);

/* Where the owner of a socket lives when /proc did not name it, as a phrase that follows
 * "a process": root reads every process of its own pid namespace, so for euid 0 it is
 * "in another pid namespace or container" (or a socket the kernel holds). NULL for
 * other users: the owner is another user's process, which root could name. Static text. */
const char *procfs_unseen_where(void);

/* Writes the known owners of owners[0..n) (pid 0 skipped) as "nginx (pid 812), nginx
 * (pid 813)" into buf. Only whole entries are written; when some do not fit ", ..."
 * ends the text if it fits. Returns the text's length; "" (0) when none is known. */
size_t procfs_owner_text(const struct procfs_owner *owners, size_t n, char *buf, size_t len);

/* Writes who listens on TCP port `port` in procfs_owner_text's form, for messages like
 * "port 62893 is held by nginx (pid 812)". Returns the length; "" (0) when nobody
 * holds the port, the holder cannot be read, or on error. */
size_t procfs_port_holder_text(uint16_t port, char *buf, size_t len);

/* Why a listener's bind to TCP port `port` at address at (NULL: any) failed with
 * EADDRINUSE, as text that follows "held by": who listens there (that address, or a
 * wildcard), else the process of a connection whose own port it is ("a connection of
 * curl (pid 9)": a bind conflicts with it when either socket lacks SO_REUSEADDR), else
 * what the kernel keeps of a closed one (TIME-WAIT, FIN-WAIT-2, ...). Sockets on other
 * addresses do not count. "" (0) when none of these is known. */
size_t procfs_port_blocker_text(const struct sockaddr_storage *at, uint16_t port, char *buf, size_t len);

#define PROCFS_TIME_WAIT_S 60 /* how long Linux keeps a TIME-WAIT socket (TCP_TIMEWAIT_LEN) */

/* What the kernel keeps of a closed connection in TCP state `state`, as text that
 * follows "held by": "a connection that ended, in TIME-WAIT (the kernel frees the port
 * within 60 s)", or "a closed connection the kernel is still ending (FIN-WAIT-1)";
 * FIN-WAIT-2 says how long the kernel waits for the peer (net.ipv4.tcp_fin_timeout).
 * Returns the length. */
size_t procfs_kernel_held_text(int state, char *buf, size_t len);

/* Writes who holds the abstract unix socket named name (without the leading NUL; as
 * /proc/net/unix shows it after '@') in procfs_owner_text's form. Returns the length;
 * 0 when nobody does or the holder cannot be read. */
size_t procfs_unix_holder_text(const char *name, char *buf, size_t len);

#endif
