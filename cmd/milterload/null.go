package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/authmilter/authmilter/milter"
)

// nullMain implements `milterload null`: a milter that speaks the protocol
// exactly as authmilter does (the same server, negotiation, macros and
// SMFIP_NR_* flags, one header field added and "accept" at end of message)
// and does no other work. Driven by milterload like any milter, its CPU
// per message is the floor of the protocol, the system calls and the Go
// runtime on this machine: what a milter built on authmilter's protocol
// loop costs before it checks anything.
func nullMain(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("milterload null", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "inet:127.0.0.1:8896", "where to listen: inet:HOST:PORT or unix:PATH (loopback and unix only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New("null takes no arguments besides its flags")
	}
	// The listener must be as local as milterload's targets.
	if _, _, err := parseTarget(ctx, *listen); err != nil {
		return err
	}
	ln, err := milter.Listen(*listen)
	if err != nil {
		return err
	}
	srv := &milter.Server{
		NewSession: func(*milter.Conn) milter.Milter { return nullSession{} },
		Logger:     slog.New(slog.NewTextHandler(stderr, nil)),
		Actions:    nullActions,
		Protocol:   nullProtocol,
		SymList:    nullSymList,
	}
	fmt.Fprintf(stderr, "milterload null: listening on %s\n", ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// The negotiation of authmilter's milter sessions (engine.Actions,
// engine.Protocol, engine.SymList), written out so that the null milter
// links none of the verifiers; TestNullNegotiatesAsAuthmilter keeps them
// equal.
const (
	nullActions  = milter.OptAddHeader | milter.OptChangeHeader | milter.OptQuarantine | milter.OptSetSymList
	nullProtocol = milter.OptHeaderLeadingSpace | milter.OptNoUnknown | milter.OptNoData | milter.NoReplyFlags
)

var nullSymList = map[milter.Stage][]string{
	milter.StageConnect:  {"j", "{client_addr}", "{client_name}", "{daemon_name}"},
	milter.StageMailFrom: {"i", "{auth_authen}", "{mail_addr}"},
	milter.StageEOH:      {"i"},
	milter.StageEOM:      {"i"},
}

// nullSession answers every message with an Authentication-Results field
// of a typical size and "accept".
type nullSession struct{}

const nullResults = "mx.inbound.example;\r\n\tspf=pass smtp.mailfrom=sender.example;\r\n\tdkim=pass header.d=sender.example header.s=sel header.b=AbCdEfGh;\r\n\tdmarc=pass header.from=sender.example"

func (nullSession) Connect(string, byte, uint16, string, *milter.Macros) {}
func (nullSession) Helo(string, *milter.Macros)                          {}
func (nullSession) MailFrom(string, *milter.Macros)                      {}
func (nullSession) RcptTo(string, *milter.Macros)                        {}
func (nullSession) Header(_, _ []byte, _ *milter.Macros)                 {}
func (nullSession) EndOfHeaders(*milter.Macros)                          {}
func (nullSession) BodyChunk([]byte, *milter.Macros)                     {}
func (nullSession) Abort()                                               {}
func (nullSession) Close()                                               {}

func (nullSession) EndOfMessage(_ *milter.Macros, mod *milter.Modifier) milter.Reply {
	mod.InsertHeader(0, "Authentication-Results", nullResults)
	return milter.ReplyAccept
}
