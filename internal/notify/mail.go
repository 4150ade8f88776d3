package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TLSMode is how a Mailer secures its connection.
type TLSMode string

// TLS modes.
const (
	// StartTLS (the default) upgrades the connection with STARTTLS and
	// refuses servers that do not offer it.
	StartTLS TLSMode = "starttls"
	// ImplicitTLS speaks TLS from the first byte (SMTPS, port 465).
	ImplicitTLS TLSMode = "tls"
)

// SMTPConfig configures a Mailer.
type SMTPConfig struct {
	// Addr is the server's host:port.
	Addr string
	// From is the sender, "signet@example.com" or "Signet <signet@example.com>".
	From string
	// Username and Password, when set, authenticate with AUTH PLAIN, only
	// ever over TLS. Password is secret.
	Username, Password string
	// TLS is StartTLS (default) or ImplicitTLS.
	TLS TLSMode
	// TLSConfig verifies the server; nil means the system roots and the
	// host of Addr as server name.
	TLSConfig *tls.Config
	// InsecurePlaintextLoopback lets mail go unencrypted when the server
	// does not offer STARTTLS, only if Addr is a loopback IP address, and
	// never with a password. For local sinks in tests and development.
	InsecurePlaintextLoopback bool
	// HelloName is sent in EHLO (default "localhost").
	HelloName string
	// Timeout bounds one message's whole conversation (default 30 s).
	Timeout time.Duration
}

// Mailer sends plain-text mail over SMTP.
type Mailer struct {
	cfg      SMTPConfig
	host     string
	from     *mail.Address
	loopback bool
}

// NewMailer checks cfg and returns a Mailer.
func NewMailer(cfg SMTPConfig) (*Mailer, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("notify: SMTP address %q: %v", cfg.Addr, err)
	}
	from, err := parseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("notify: SMTP sender: %w", err)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = StartTLS
	case StartTLS, ImplicitTLS:
	default:
		return nil, fmt.Errorf("notify: SMTP TLS mode %q (want %q or %q)", cfg.TLS, StartTLS, ImplicitTLS)
	}
	ip := net.ParseIP(host)
	loopback := ip != nil && ip.IsLoopback()
	if cfg.InsecurePlaintextLoopback && !loopback {
		return nil, fmt.Errorf("notify: plaintext SMTP is allowed only to a loopback IP address, not %s", host)
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.TLSConfig == nil {
		cfg.TLSConfig = &tls.Config{}
	}
	cfg.TLSConfig = cfg.TLSConfig.Clone()
	if cfg.TLSConfig.ServerName == "" {
		cfg.TLSConfig.ServerName = host
	}
	cfg.TLSConfig.MinVersion = max(cfg.TLSConfig.MinVersion, tls.VersionTLS12)
	return &Mailer{cfg: cfg, host: host, from: from, loopback: loopback}, nil
}

// String shows the mailer without its password.
func (m *Mailer) String() string {
	return fmt.Sprintf("smtp %s (%s, user %q, from %s)", m.cfg.Addr, m.cfg.TLS, m.cfg.Username, m.from.Address)
}

func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("address %q holds a line break", s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("address %q: %v", s, err)
	}
	return a, nil
}

// Message is one plain-text mail to one recipient.
type Message struct {
	To      string
	Subject string
	// Body is plain text; line breaks may be \n or \r\n.
	Body string
	// ID makes the Message-ID (the delivery ID, so a retried delivery
	// keeps its Message-ID); Date is the Date header.
	ID   string
	Date time.Time
}

// Send delivers msg: connect, EHLO, STARTTLS (or implicit TLS), AUTH PLAIN
// when configured, MAIL, RCPT, DATA. SMTP 5xx answers are PermanentErrors.
func (m *Mailer) Send(ctx context.Context, msg Message) (err error) {
	data, to, err := m.compose(msg)
	if err != nil {
		return &PermanentError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("notify: SMTP %s: %w", m.cfg.Addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	defer func() {
		if err != nil {
			err = classify(m.cfg.Addr, err)
		}
	}()

	secure := false
	if m.cfg.TLS == ImplicitTLS {
		tc := tls.Client(conn, m.cfg.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		conn, secure = tc, true
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(m.cfg.HelloName); err != nil {
		return err
	}
	if !secure {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.cfg.TLSConfig); err != nil {
				return fmt.Errorf("STARTTLS: %w", err)
			}
			secure = true
		} else if !m.cfg.InsecurePlaintextLoopback || !m.loopback {
			return &PermanentError{errors.New("the server does not offer STARTTLS, and mail is sent over TLS only")}
		}
	}
	if m.cfg.Username != "" {
		if !secure {
			return &PermanentError{errors.New("refusing to send a password without TLS")}
		}
		ok, mechs := c.Extension("AUTH")
		if !ok || !strings.Contains(" "+strings.ToUpper(mechs)+" ", " PLAIN ") {
			return &PermanentError{fmt.Errorf("the server does not offer AUTH PLAIN (it offers %q)", mechs)}
		}
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, m.host)); err != nil {
			return fmt.Errorf("AUTH PLAIN as %q: %w", m.cfg.Username, err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("RCPT TO <%s>: %w", to, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return c.Quit()
}

// classify prefixes err and marks SMTP 5xx replies permanent.
func classify(addr string, err error) error {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return &PermanentError{fmt.Errorf("notify: SMTP %s: %w", addr, pe.Err)}
	}
	err = fmt.Errorf("notify: SMTP %s: %w", addr, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return &PermanentError{err}
	}
	return err
}

// compose builds the message's bytes (CRLF lines) and its envelope
// recipient. Every header value is sanitized: no control characters, so no
// header can be injected, and non-ASCII subjects are RFC 2047 encoded.
func (m *Mailer) compose(msg Message) ([]byte, string, error) {
	to, err := parseAddress(msg.To)
	if err != nil {
		return nil, "", fmt.Errorf("notify: recipient: %w", err)
	}
	if msg.ID == "" || msg.Date.IsZero() {
		return nil, "", errors.New("notify: message without an ID or date")
	}
	domain := "signet.invalid"
	if at := strings.LastIndexByte(m.from.Address, '@'); at >= 0 {
		domain = m.from.Address[at+1:]
	}
	var b bytes.Buffer
	header := func(name, value string) { fmt.Fprintf(&b, "%s: %s\r\n", name, value) }
	header("From", m.from.String())
	header("To", (&mail.Address{Address: to.Address}).String())
	header("Subject", encodeHeader(OneLine(msg.Subject, 150)))
	header("Date", msg.Date.UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+idPart(msg.ID)+"@"+idPart(domain)+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body := strings.ReplaceAll(strings.ToValidUTF8(msg.Body, "\uFFFD"), "\r\n", "\n")
	if _, err := qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n"))); err != nil {
		return nil, "", err
	}
	if err := qp.Close(); err != nil {
		return nil, "", err
	}
	b.WriteString("\r\n")
	return b.Bytes(), to.Address, nil
}

// OneLine makes s safe for a header or a one-line field: valid UTF-8,
// every control or line/paragraph separator character replaced by a space,
// at most max runes (cut with "…").
func OneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

func encodeHeader(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return mime.BEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// idPart keeps a Message-ID part to atext characters.
func idPart(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r)) {
			return r
		}
		return '_'
	}, s)
}
