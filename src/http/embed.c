/* embed.c - the accept side of an HTTP service embedded in another verb (proxy's
 * control API, watch's status page): who may connect, and the hand-over to the engine. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/net.h"
#include "core/sockdiag.h"
#include "http/http.h"

int http_embed_conn(void *ctx, int fd, const struct sockaddr_storage *peer, atomic_uint *nconns, unsigned max,
                    int sndbuf, int want_uid)
{
	int one = 1;
	struct proto_peer pp;

	if (!net_is_loopback((const struct sockaddr *)peer) || atomic_load(nconns) >= max) {
		close(fd); /* this machine only, a bounded number at once */
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (sndbuf)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	memset(&pp, 0, sizeof(pp));
	pp.addr = *peer;
	pp.pid = -1;
	pp.uid = -1;
	if (want_uid) { /* one exact netlink request */
		struct sockaddr_storage local;
		struct sockdiag_sock sd;
		socklen_t ll = sizeof(local);
		if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0 &&
		    sockdiag_peer(&local, peer, &sd) == 0)
			pp.uid = (long)sd.uid;
	}
	net_ss_text(peer, pp.addr_str, sizeof(pp.addr_str));
	atomic_fetch_add(nconns, 1);
	http_proto_ops.start(ctx, fd, &pp, NULL, 0, NULL);
	return 0;
}
