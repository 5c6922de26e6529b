/*
 * bench/nullmilter.c: a milter on Sendmail's libmilter that checks nothing.
 *
 * bench/compare.sh builds it (gcc, libmilter-dev) and measures it like the
 * other milters: it negotiates what authmilter negotiates (header changes
 * and quarantine; SMFIP_HDR_LEADSPC, no UNKNOWN or DATA, no replies before
 * end of message), inserts one Authentication-Results field of a typical
 * size at end of message and accepts. Its CPU per message is the floor of
 * the library OpenDKIM and OpenDMARC are built on (a thread per connection,
 * a reply per packet where the MTA wants one), as `milterload null` is the
 * floor of authmilter's protocol loop.
 *
 * usage: nullmilter SOCKET   (libmilter's form, e.g. inet:8893@127.0.0.1)
 */
#include <stdio.h>
#include <libmilter/mfapi.h>

#define ACTIONS (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE)

static const char results[] =
	" mx.inbound.example;\r\n"
	"\tspf=pass smtp.mailfrom=sender.example;\r\n"
	"\tdkim=pass header.d=sender.example header.s=sel header.b=AbCdEfGh;\r\n"
	"\tdmarc=pass header.from=sender.example";

static sfsistat
null_negotiate(SMFICTX *ctx, unsigned long actions, unsigned long steps,
	unsigned long unused0, unsigned long unused1, unsigned long *pactions,
	unsigned long *psteps, unsigned long *punused0, unsigned long *punused1)
{
	const unsigned long want = SMFIP_HDR_LEADSPC | SMFIP_NOUNKNOWN |
		SMFIP_NODATA | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL |
		SMFIP_NR_RCPT | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NR_HDR;

	(void)ctx; (void)unused0; (void)unused1;
	*pactions = actions & ACTIONS;
	*psteps = steps & want;
	*punused0 = 0;
	*punused1 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
null_eom(SMFICTX *ctx)
{
	if (smfi_insheader(ctx, 0, "Authentication-Results", (char *)results) != MI_SUCCESS)
		return SMFIS_TEMPFAIL;
	return SMFIS_ACCEPT;
}

static struct smfiDesc null_desc = {
	.xxfi_name = "nullmilter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = ACTIONS,
	.xxfi_eom = null_eom,
	.xxfi_negotiate = null_negotiate,
};

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s SOCKET (e.g. inet:8893@127.0.0.1)\n", argv[0]);
		return 2;
	}
	if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(null_desc) == MI_FAILURE) {
		fprintf(stderr, "nullmilter: cannot use %s\n", argv[1]);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
