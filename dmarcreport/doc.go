// Package dmarcreport builds DMARC aggregate reports as RFC 9990 defines
// them: the facts of one judged message (Record), the rows that identical
// facts add up to (Row, keyed by Row.Key), the XML document in the namespace
// urn:ietf:params:xml:ns:dmarc-2.0 (Report.XML), and the email that carries
// it (Report.Message: a short text part and the gzip-compressed XML, with
// the filename and Subject of RFC 9990 §2.5.2 "Email").
//
// Section numbers cited here are RFC 9990's, with the section title so a
// reader can find them in the draft text too.
//
// It knows nothing of the milter, of SMTP or of a particular database:
// package dmarcreport/store keeps the counters, the Recorder feeds it
// without ever blocking the caller, and the Sender turns closed periods
// into mail.
package dmarcreport
