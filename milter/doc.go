// Package milter speaks the milter protocol (version 6, as Sendmail's
// libmilter and Postfix speak it) on the server side: Server accepts MTA
// connections, one goroutine each, reads the MTA's commands, hands them to
// the connection's Milter and writes its replies and header changes;
// codes.go names the wire codes. It knows nothing of what a milter
// decides: authmilter's judgement is package engine, whose Handler is the
// Milter of each connection.
package milter
