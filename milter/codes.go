package milter

// The codes of the milter protocol, version 6, with the names Sendmail's
// libmilter gives them (include/libmilter/mfdef.h); Postfix's milter8.c
// speaks the same.

// Commands: the first byte of a packet the MTA sends (SMFIC_*).
const (
	CmdAbort        byte = 'A' // SMFIC_ABORT: abandon the message
	CmdBody         byte = 'B' // SMFIC_BODY: a body chunk
	CmdConnect      byte = 'C' // SMFIC_CONNECT: the SMTP client
	CmdMacro        byte = 'D' // SMFIC_MACRO: macros for the next command
	CmdEndOfMessage byte = 'E' // SMFIC_BODYEOB: end of the message
	CmdHelo         byte = 'H' // SMFIC_HELO: the HELO/EHLO name
	CmdQuitNewConn  byte = 'K' // SMFIC_QUIT_NC: quit, a new connection follows
	CmdHeader       byte = 'L' // SMFIC_HEADER: one header field
	CmdMail         byte = 'M' // SMFIC_MAIL: MAIL FROM
	CmdEndOfHeaders byte = 'N' // SMFIC_EOH: end of the header section
	CmdOptNeg       byte = 'O' // SMFIC_OPTNEG: option negotiation (the milter's answer has the same code)
	CmdQuit         byte = 'Q' // SMFIC_QUIT: close the connection
	CmdRcpt         byte = 'R' // SMFIC_RCPT: RCPT TO
	CmdData         byte = 'T' // SMFIC_DATA: DATA
	CmdUnknown      byte = 'U' // SMFIC_UNKNOWN: an SMTP command the MTA does not know
)

// Responses: the first byte of a packet the milter sends, a reply to a
// command or a change asked for at end of message (SMFIR_*).
const (
	RespAddRcpt      byte = '+' // SMFIR_ADDRCPT: add a recipient
	RespRemoveRcpt   byte = '-' // SMFIR_DELRCPT: remove a recipient
	RespAddRcptArgs  byte = '2' // SMFIR_ADDRCPT_PAR: add a recipient with ESMTP arguments
	RespShutdown     byte = '4' // SMFIR_SHUTDOWN: the milter is going away
	RespAccept       byte = 'a' // SMFIR_ACCEPT: accept the message
	RespReplaceBody  byte = 'b' // SMFIR_REPLBODY: replace the body
	RespContinue     byte = 'c' // SMFIR_CONTINUE: go on to the next command
	RespDiscard      byte = 'd' // SMFIR_DISCARD: accept and drop the message
	RespChangeFrom   byte = 'e' // SMFIR_CHGFROM: change the envelope sender
	RespConnFail     byte = 'f' // SMFIR_CONN_FAIL: fail the connection
	RespAddHeader    byte = 'h' // SMFIR_ADDHEADER: append a header field
	RespInsertHeader byte = 'i' // SMFIR_INSHEADER: insert a header field at an index
	RespSetSymList   byte = 'l' // SMFIR_SETSYMLIST: macros wanted per stage
	RespChangeHeader byte = 'm' // SMFIR_CHGHEADER: change or delete a header field
	RespProgress     byte = 'p' // SMFIR_PROGRESS: still working, reset the MTA's timeout
	RespQuarantine   byte = 'q' // SMFIR_QUARANTINE: hold the message
	RespReject       byte = 'r' // SMFIR_REJECT: reject with 5xx
	RespSkip         byte = 's' // SMFIR_SKIP: send no more body chunks
	RespTempfail     byte = 't' // SMFIR_TEMPFAIL: reject with 4xx
	RespReplyCode    byte = 'y' // SMFIR_REPLYCODE: reject or tempfail with this SMTP reply
)

// OptAction is a set of SMFIF_* actions the milter may take.
type OptAction uint32

// The actions (SMFIF_*).
const (
	OptAddHeader    OptAction = 0x01  // SMFIF_ADDHDRS: add and insert header fields
	OptChangeBody   OptAction = 0x02  // SMFIF_CHGBODY: replace the body
	OptAddRcpt      OptAction = 0x04  // SMFIF_ADDRCPT: add recipients
	OptRemoveRcpt   OptAction = 0x08  // SMFIF_DELRCPT: remove recipients
	OptChangeHeader OptAction = 0x10  // SMFIF_CHGHDRS: change and delete header fields
	OptQuarantine   OptAction = 0x20  // SMFIF_QUARANTINE: quarantine the message
	OptChangeFrom   OptAction = 0x40  // SMFIF_CHGFROM: change the envelope sender
	OptAddRcptArgs  OptAction = 0x80  // SMFIF_ADDRCPT_PAR: add recipients with ESMTP arguments
	OptSetSymList   OptAction = 0x100 // SMFIF_SETSYMLIST: ask for macros per stage
)

// OptProtocol is a set of SMFIP_* protocol flags.
type OptProtocol uint32

// The protocol flags (SMFIP_*). OptNoX: the MTA does not send command X;
// OptNoXReply: the MTA sends X and does not wait for a reply.
const (
	OptNoConnect      OptProtocol = 0x01    // SMFIP_NOCONNECT
	OptNoHelo         OptProtocol = 0x02    // SMFIP_NOHELO
	OptNoMailFrom     OptProtocol = 0x04    // SMFIP_NOMAIL
	OptNoRcptTo       OptProtocol = 0x08    // SMFIP_NORCPT
	OptNoBody         OptProtocol = 0x10    // SMFIP_NOBODY
	OptNoHeaders      OptProtocol = 0x20    // SMFIP_NOHDRS
	OptNoEOH          OptProtocol = 0x40    // SMFIP_NOEOH
	OptNoHeaderReply  OptProtocol = 0x80    // SMFIP_NR_HDR (also SMFIP_NOHREPL)
	OptNoUnknown      OptProtocol = 0x100   // SMFIP_NOUNKNOWN
	OptNoData         OptProtocol = 0x200   // SMFIP_NODATA
	OptSkip           OptProtocol = 0x400   // SMFIP_SKIP: the MTA understands RespSkip
	OptRcptRejected   OptProtocol = 0x800   // SMFIP_RCPT_REJ: send rejected recipients too
	OptNoConnReply    OptProtocol = 0x1000  // SMFIP_NR_CONN
	OptNoHeloReply    OptProtocol = 0x2000  // SMFIP_NR_HELO
	OptNoMailReply    OptProtocol = 0x4000  // SMFIP_NR_MAIL
	OptNoRcptReply    OptProtocol = 0x8000  // SMFIP_NR_RCPT
	OptNoDataReply    OptProtocol = 0x10000 // SMFIP_NR_DATA
	OptNoUnknownReply OptProtocol = 0x20000 // SMFIP_NR_UNKN
	OptNoEOHReply     OptProtocol = 0x40000 // SMFIP_NR_EOH
	OptNoBodyReply    OptProtocol = 0x80000 // SMFIP_NR_BODY
	// OptHeaderLeadingSpace: header values keep the space after the colon,
	// in both directions (SMFIP_HDR_LEADSPC).
	OptHeaderLeadingSpace OptProtocol = 0x100000
)

// Stage names a protocol stage in a macro list request (SMFIM_*).
type Stage uint32

// The stages (SMFIM_*).
const (
	StageConnect  Stage = 0 // SMFIM_CONNECT
	StageHelo     Stage = 1 // SMFIM_HELO
	StageMailFrom Stage = 2 // SMFIM_ENVFROM
	StageRcpt     Stage = 3 // SMFIM_ENVRCPT
	StageData     Stage = 4 // SMFIM_DATA
	StageEOM      Stage = 5 // SMFIM_EOM
	StageEOH      Stage = 6 // SMFIM_EOH
)

// Address families of the connect command (SMFIA_*).
const (
	FamilyUnknown byte = 'U' // SMFIA_UNKNOWN
	FamilyUnix    byte = 'L' // SMFIA_UNIX: a local socket
	FamilyInet    byte = '4' // SMFIA_INET
	FamilyInet6   byte = '6' // SMFIA_INET6
)
