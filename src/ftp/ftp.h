/* ftp.h - the FTP engine of `serve`: one protocol on the shared port (core/proto.h). */
#ifndef LOOPKIT_FTP_FTP_H
#define LOOPKIT_FTP_FTP_H

#include <stdint.h>

#include "core/proto.h"

#define FTP_DEFAULT_IDLE_TIMEOUT_S 300 /* a control connection idle this long gets 421 */
#define FTP_DEFAULT_DATA_TIMEOUT_S 30  /* data connection setup, stall or drain */

/* FTP's own settings. Everything the protocols share (the root, --write, --user,
 * --max-body, logging, the connection count) is in struct proto_site. */
struct ftp_config {
	uint16_t pasv_lo, pasv_hi; /* passive port range; 0: any free port */
	unsigned idle_timeout_ms;  /* control connection idle -> 421 and close */
	unsigned data_timeout_ms;  /* data connection: nobody connects, it stalls, or it
	                              does not drain after the last byte -> 425/426 */
};

/* Fills cfg with the defaults (any passive port, FTP_DEFAULT_IDLE_TIMEOUT_S,
 * FTP_DEFAULT_DATA_TIMEOUT_S). */
void ftp_config_default(struct ftp_config *cfg);

/* The protocol: ctx_new takes a struct ftp_config as cfg. A session logs in with
 * site->login (core/login.h; anonymous, any name, when it is NULL), may write when
 * site->write is set, uploads at most site->max_body bytes per STOR/APPE (552 past
 * it), and tells the server through hooks->note when a peer logs in
 * (PROTO_NOTE_FTP_LOGIN) or turns out to speak HTTP (PROTO_NOTE_HTTP, then closed). */
extern const struct proto_ops ftp_proto_ops;

#endif
