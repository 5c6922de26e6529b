// Package postfixtest runs a private, throw-away Postfix instance for
// end-to-end tests of the milter: real smtpd, real milter protocol, real
// delivery, nothing shared with the system's Postfix and nothing leaving
// 127.0.0.1.
//
//	pf := postfixtest.Start(t, postfixtest.Options{Milter: "inet:" + ln.Addr().String()})
//	code, reply, err := pf.Send(t, postfixtest.Envelope{
//		HeloName: "mail.example.com", ClientIP: "192.0.2.10",
//		MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"},
//	}, msg)
//	d := pf.WaitDelivered(t, 1, 20*time.Second)[0]
//	d.Get("Authentication-Results")
//
// Start skips the test when Postfix is missing (and fails it when
// AUTHMILTER_REQUIRE_INTEROP=1, as in CI), and also when not running as
// root: master(8) must start as root to drop to mail_owner.
//
// # The instance
//
// Everything lives under t.TempDir(): etc/ (main.cf, master.cf, the
// config_directory), spool/ (queue_directory, created with the right owners
// by "postfix -c etc check"), data/, mail/mailbox/ (a Maildir) and maillog.
// master(8) runs in the foreground as a child of the test ("master -c etc
// -d", in its own session so that one kill(-pgid) reaches every daemon, with
// Pdeathsig so that it dies with the test binary); t.Cleanup stops it and
// kills any leftover process.
//
// Settings and why:
//
//   - master.cf: Debian's services with chroot "n" everywhere (the private
//     queue has no chroot jail), the SMTP listener as "127.0.0.1:PORT inet",
//     and postlog (unix-dgram, postlogd) for maillog_file. PORT comes from
//     listening on 127.0.0.1:0; if master cannot bind it, Start picks another.
//   - inet_interfaces=127.0.0.1 (the only address bound), inet_protocols=all
//     (so that XCLIENT accepts IPv6 client addresses), mynetworks=127.0.0.0/8.
//   - No DNS: myhostname set explicitly, smtpd_peername_lookup=no,
//     smtp_dns_support_level=disabled, smtp_host_lookup=native, relayhost
//     empty, no alias maps, no client/helo/sender/recipient restrictions.
//   - Delivery: virtual(8) to one Maildir, as nobody (virtual_uid_maps,
//     virtual_gid_maps; parents of the temp dir are made searchable).
//     Options.LocalDomain (default example.test) is virtual_mailbox_domains,
//     so any client may send to it; default_transport and relay_transport
//     are "virtual" too, so mail relayed for 127.0.0.0/8 to any other domain
//     is also captured (useful for outbound signing tests) and bounces land
//     there as well. Postfix prepends Return-Path, X-Original-To and
//     Delivered-To and stores LF line ends.
//   - smtpd_authorized_xclient_hosts=127.0.0.0/8: Send uses XCLIENT
//     ADDR/NAME/HELO so the milter sees e.g. 192.0.2.10 / mail.example.com.
//   - smtpd_milters=Options.Milter, milter_protocol=6,
//     milter_default_action=Options.MilterDefaultAction (tempfail),
//     milter_{connect,command,content}_timeout 5s/10s/30s unless set.
//   - smtpd_error_sleep_time=0 and high error limits (no 1 s sleeps after
//     rejections); queue_run_delay=1s, minimal_backoff_time=1s,
//     maximal_backoff_time=2s (deferred mail is retried within seconds),
//     maximal_queue_lifetime=10m.
//   - maillog_file=DIR/maillog (maillog_file_prefixes=DIR): Logs, LogTail,
//     and the end of the log in every failure message.
//   - Options.Extra overrides any of these (e.g. "milter_mail_macros");
//     Reconfigure changes settings later by restarting on the same port and
//     queue.
//
// Pitfalls met on the way:
//
//   - Postfix programs sleep in 300 ms steps (up to ~2 s) while main.cf is
//     younger than a couple of seconds; the harness backdates main.cf and
//     master.cf.
//   - master's own start-up errors (e.g. a port conflict) go to syslog only
//     (postlogd is not up yet), and there is no /dev/log in a container;
//     "postfix check" prints its errors on stderr only when that is a
//     terminal, so the harness runs it on a pseudo-terminal.
//   - Do not run "postfix set-permissions" for a private instance: it also
//     chowns shared files under /usr. "postfix check" only creates the
//     missing queue directories.
//   - master sets SO_REUSEPORT on its listener; a Go listener on the same
//     port still makes it fail (Go does not set SO_REUSEPORT).
//   - After master exits on SIGTERM, some daemons linger for over a second;
//     Stop kills what is left of the process group after 300 ms.
//   - The maildir's parents must be searchable by the delivery user:
//     t.TempDir() creates 0700 directories.
//   - Values such as milter_default_action are only checked when smtpd runs:
//     a bad one shows up as a failed SMTP session (Send then quotes the
//     fatal lines from the log).
//
// # What Postfix 3.7 sends to a milter
//
// Observed with this harness (Postfix 3.7.11, milter_protocol=6) by the
// self-test, which records the raw packets:
//
//   - SMFIC_OPTNEG offers version 6, actions 0x1ff (all of ADDHDRS,
//     CHGBODY, ADDRCPT, DELRCPT, CHGHDRS, QUARANTINE, CHGFROM, ADDRCPT_PAR,
//     SETSYMLIST) and protocol 0x1fffff (every NO*, NR_* flag, SKIP,
//     RCPT_REJ, HDR_LEADSPC). github.com/emersion/go-milter answers
//     version 2; Postfix accepts that, honours the returned macro list
//     (SymList), and then sends no SMFIC_DATA.
//   - One milter connection per SMTP connection, and XCLIENT ends it
//     (SMFIC_QUIT) and opens a new one for the new client: each XCLIENT
//     session costs the milter two connections, the first one (O DC C Q)
//     seeing 127.0.0.1 only, as Send issues XCLIENT before EHLO.
//   - SMFIC_CONNECT carries the verified client name, or "[192.0.2.10]"
//     (not "unknown") when there is none, family '4' or '6', the client
//     port and the address; IPv6 addresses come bare ("2001:db8::10"),
//     without Sendmail's "IPv6:" prefix. (Postfix accepts XCLIENT
//     ADDR=IPV6:... only with inet_protocols including ipv6, hence "all".)
//   - A SMFIC_MACRO packet precedes every command, even when it carries no
//     macro (DH without TLS): with go-milter each one replaces
//     Modifier.Macros, so a callback only sees its own stage's macros.
//   - SMFIC_ABORT also arrives outside transactions: after EHLO, after every
//     end of message, and before SMFIC_QUIT. MAIL and RCPT arguments keep
//     their angle brackets on the wire.
//   - Sequence for one accepted message: O DC C DH H A DM M DR R (DL L)…
//     DN N DB B… DE E A, then A Q at QUIT.
//
// Default macro lists ("postconf -d", Postfix 3.7):
//
//	milter_connect_macros       = j {daemon_name} {daemon_addr} v _
//	milter_helo_macros          = {tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}
//	milter_mail_macros          = i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}
//	milter_rcpt_macros          = i {rcpt_addr} {rcpt_host} {rcpt_mailer}
//	milter_data_macros          = i
//	milter_end_of_header_macros = i
//	milter_end_of_data_macros   = i
//	milter_unknown_command_macros =
//	milter_macro_daemon_name    = $myhostname
//	milter_macro_v              = $mail_name $mail_version
//
// Values seen: j and {daemon_name} = myhostname, {daemon_addr}=127.0.0.1,
// v="Postfix 3.7.11", _="unknown [192.0.2.10]" (or "name [addr]");
// {mail_addr}, {mail_host} (sender domain), {mail_mailer} (transport,
// "virtual" here); {rcpt_addr}, {rcpt_host}, {rcpt_mailer}. The {auth_*}
// macros exist only after SMTP AUTH, the TLS ones only with STARTTLS.
// {i}, the queue id, is NOT available at MAIL or RCPT (the queue file is
// created after the first accepted recipient, smtpd_delay_open_until_valid_rcpt
// = yes); it comes with the header, end-of-header, body and end-of-message
// macro packets. {client_addr}, {client_name}, {client_port}, {client_ptr}
// are in no default list: request them through SymList (or set the
// milter_*_macros parameters) or use the SMFIC_CONNECT address. Postfix has
// no macro for the HELO name.
package postfixtest
