// Package authres formats and parses the Authentication-Results header
// field of RFC 8601 and formats the Received-SPF header field of RFC 7208
// §9.1. It is the one place where authmilter turns results into header
// text. It knows no verifier: package engine says what each verifier's
// result becomes (method, result, comment, properties), this package
// writes it.
//
// # Formatting
//
// A Result is one resinfo (RFC 8601 §2.2): a method, its result, an
// optional reason, an optional comment and the properties (ptype.property
// = value) that say what was checked. Format builds the value of an
// Authentication-Results field for an authserv-id, Field the whole field,
// FormatResults the bare resinfo list that ARC-Authentication-Results
// carries (RFC 8617 §4.1.1). HeaderB shortens a DKIM b= value to the
// header.b property of RFC 6008 §4. FormatReceivedSPF formats a
// Received-SPF field value from a ReceivedSPF.
//
// Everything that can come from a message, an envelope or the DNS is
// sanitised before it is written, so that no input can add a header line,
// end a field, or change the structure of the field:
//
//   - CR, LF and HTAB in free text (comments, reasons) become spaces and runs
//     of spaces are collapsed; every other control character (C0, DEL, C1),
//     every byte that is not valid UTF-8 and every Unicode character that is
//     not printable (unicode.IsPrint: format characters such as bidi
//     overrides, separators other than the ASCII space) becomes "?".
//   - A value (authserv-id, reason, property value) is written bare only when
//     it is an RFC 2045 §5.1 token or, for a property, the
//     [[local-part] "@"] domain-name form of RFC 8601 §2.2; otherwise it is
//     a quoted-string with '"' and '\' escaped as quoted-pairs.
//   - Comments escape '(', ')' and '\' as quoted-pairs (RFC 5322 §3.2.2).
//   - Method, result, ptype and property names must be Keywords (RFC 8601
//     §2.2, the ldh-str of RFC 5321); they are chosen by the program, not by
//     the message. A resinfo whose method or result is not a Keyword, and a
//     property whose type or name is not, is left out rather than mangled.
//   - Values and texts longer than 512 octets, counting the quoted-pairs
//     escaping adds, are cut (at a character boundary) and end in "...", and
//     names longer than 64 octets are refused, so that no line exceeds the
//     998 octets of RFC 5322 §2.1.1. A cut property value no longer names
//     the identity checked; SMTP bounds paths to 256 octets (RFC 5321
//     §4.5.3.1.3), so only a value that is invalid anyway is cut.
//
// Non-ASCII text: valid UTF-8 is kept inside quoted-strings and comments,
// as RFC 6532 §3.2 allows (RFC 8601 §2.2 takes "value" from RFC 2045, whose
// quoted-string RFC 6532 extends). In practice it only appears when the
// message itself carried it (an SMTPUTF8 envelope). Tokens, Keywords and the
// unquoted address form are ASCII only, so non-ASCII values are quoted.
//
// Lines are folded with CRLF followed by a TAB (RFC 5322 §2.2.3): every
// resinfo starts on a line of its own, and further folds are made between
// the words of a resinfo and between the words of a comment so that lines
// stay within 78 columns (RFC 5322 §2.1.1, counting a TAB as 8 columns)
// where no single word is longer.
//
// # Parsing
//
// Parse is tolerant, for reading fields written by others: comments
// (nested, with quoted-pairs) wherever CFWS may appear, quoted-strings,
// folding with CRLF or bare LF, "none", method versions ("dkim/1"), a
// trailing ";", and method, result, ptype and property names in any case
// (they are returned in lower case: ABNF literals are case-insensitive,
// RFC 5234 §2.3). Property values, reasons and the authserv-id keep their
// case. A property without a ptype ("action=none", as some large providers
// write) is accepted with an empty Type. Anything else that breaks the
// grammar is an error wrapping ErrSyntax.
//
// AuthServID extracts only the authserv-id, seeing through leading CFWS,
// folding, quoted-strings and whatever follows the id. It is what a milter
// uses to find forged fields that claim its own authserv-id (RFC 8601 §5);
// compare ids with SameAuthServID, which ignores case and a trailing dot
// because an authserv-id is normally a domain name (RFC 8601 §2.5).
//
// References: RFC 8601 (Message Header Field for Indicating Message
// Authentication Status), RFC 6008 (Authentication-Results Registration for
// Differentiating among Cryptographic Results), RFC 7208 §9.1 (Received-SPF),
// RFC 2045 §5.1 (token, quoted-string), RFC 5322 (comments, folding),
// RFC 6532 (UTF-8 in header fields).
package authres
