//! Outgoing mail over SMTP (`lettre`): the password reset codes of seed 001's `/auth/reset`.
//!
//! [`Mailer`] is one SMTP relay, configured by a URL in lettre's syntax (`smtps://` for TLS,
//! `smtp://...?tls=required` for STARTTLS, plain `smtp://` for a relay on loopback). The server
//! does not wait for the relay: [`Outbox`] hands each message to one sending thread, so a reply
//! never depends on (and never reveals, by its timing) whether a mail was sent. Failures are
//! logged with the recipient, never with the body, which carries a secret.

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};

/// Sender address when `--mail-from` is not given.
pub const DEFAULT_FROM: &str = "certmill <certmill@localhost>";

/// How long one SMTP exchange may take before it is abandoned.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages waiting for the sending thread; past this, new ones are dropped (and logged).
pub const OUTBOX_CAPACITY: usize = 256;

/// Errors of configuring or sending mail. No message contains a mail body or SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The SMTP URL is not one lettre understands.
    #[error("--smtp-url: {0} (expected smtps://host, smtp://host?tls=required or smtp://host)")]
    Url(String),
    /// An address is not a mailbox (`Name <user@host>` or `user@host`).
    #[error("{field}: {value:?} is not an e-mail address")]
    Address {
        /// Which address (`--mail-from`, `to`).
        field: &'static str,
        /// The text given.
        value: String,
    },
    /// The message could not be built.
    #[error("building the message: {0}")]
    Build(String),
    /// The relay refused the message or could not be reached.
    #[error("SMTP: {0}")]
    Send(String),
}

/// One message: a plain-text mail to one recipient. `Debug` leaves out the body.
#[derive(Clone)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("body", &"<redacted>")
            .finish()
    }
}

/// An SMTP relay and the sender address.
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The relay at `url` (lettre's URL syntax; user and password in the URL are the SMTP
    /// login) sending as `from`.
    pub fn new(url: &str, from: &str) -> Result<Mailer, MailError> {
        let transport = SmtpTransport::from_url(url)
            // lettre's message may quote the URL, password included: keep only the cause.
            .map_err(|e| MailError::Url(redact(&e.to_string(), url)))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = from.parse::<Mailbox>().map_err(|_| MailError::Address {
            field: "--mail-from",
            value: from.to_owned(),
        })?;
        Ok(Mailer { transport, from })
    }

    /// Sends `mail` now. Blocking: network I/O.
    pub fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let to = mail.to.parse::<Mailbox>().map_err(|_| MailError::Address {
            field: "to",
            value: mail.to.clone(),
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Build(e.to_string()))?;
        self.transport
            .send(&message)
            .map(drop)
            .map_err(|e| MailError::Send(e.to_string()))
    }
}

/// `text` with every occurrence of `url` replaced, so an SMTP password never reaches a log.
fn redact(text: &str, url: &str) -> String {
    if url.is_empty() {
        text.to_owned()
    } else {
        text.replace(url, "<smtp url>")
    }
}

/// A queue in front of a [`Mailer`], drained by one thread (`certmill-mail`).
#[derive(Clone, Debug)]
pub struct Outbox {
    sender: crossbeam_channel::Sender<Mail>,
}

impl Outbox {
    /// Starts the sending thread; it ends when every `Outbox` clone is dropped.
    pub fn start(mailer: Mailer) -> std::io::Result<Outbox> {
        let (sender, receiver) = crossbeam_channel::bounded::<Mail>(OUTBOX_CAPACITY);
        std::thread::Builder::new()
            .name("certmill-mail".into())
            .spawn(move || {
                for mail in receiver {
                    if let Err(e) = mailer.send(&mail) {
                        eprintln!("mail to {}: {e}", mail.to);
                    }
                }
            })?;
        Ok(Outbox { sender })
    }

    /// Queues `mail`; `false` (logged) when the queue is full or the thread has ended.
    pub fn post(&self, mail: Mail) -> bool {
        let to = mail.to.clone();
        match self.sender.try_send(mail) {
            Ok(()) => true,
            Err(e) => {
                let why = if e.is_full() {
                    "outbox full"
                } else {
                    "mail thread ended"
                };
                eprintln!("mail to {to}: not sent: {why}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lettre_does_not_know_are_refused_without_their_password() {
        let error = Mailer::new("imap://user:s3cret@mail.example", DEFAULT_FROM).unwrap_err();
        assert!(matches!(error, MailError::Url(_)), "{error:?}");
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn the_sender_must_be_a_mailbox() {
        let error = Mailer::new("smtp://127.0.0.1:2525", "not an address").unwrap_err();
        assert!(
            matches!(
                error,
                MailError::Address {
                    field: "--mail-from",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(Mailer::new("smtp://127.0.0.1:2525", "Line 3 <ops@factory.example>").is_ok());
        assert!(Mailer::new("smtps://mail.example", DEFAULT_FROM).is_ok());
        assert!(Mailer::new("smtp://mail.example?tls=required", DEFAULT_FROM).is_ok());
    }

    #[test]
    fn debug_leaves_out_the_body() {
        let mail = Mail {
            to: "ann@factory.example".into(),
            subject: "reset".into(),
            body: "code 1234".into(),
        };
        assert!(!format!("{mail:?}").contains("1234"));
    }

    #[test]
    fn an_unreachable_relay_is_an_smtp_error() {
        // Port 9 on loopback (discard) is closed on a test machine: connection refused.
        let mailer = Mailer::new("smtp://127.0.0.1:9", DEFAULT_FROM).expect("mailer");
        let error = mailer
            .send(&Mail {
                to: "ann@factory.example".into(),
                subject: "s".into(),
                body: "b".into(),
            })
            .unwrap_err();
        assert!(matches!(error, MailError::Send(_)), "{error:?}");
    }
}
