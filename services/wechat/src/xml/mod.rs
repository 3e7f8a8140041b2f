//! The XML WeChat pushes and expects back, read with quick-xml under hostile-input rules.
//!
//! WeChat's documents are flat: a `<xml>` root whose children are text leaves (a few events
//! nest more, e.g. `ScanCodeInfo`; those subtrees are skipped). [`Fields`] is that flat view;
//! [`Inbound`], [`Envelope`] and the reply types are built from it.
//!
//! Refused outright: a DOCTYPE (so no entity can ever be declared: no billion laughs, no XXE),
//! processing instructions other than the `<?xml …?>` declaration, references to anything but
//! the five predefined entities and numeric character references. Capped: size, depth, number
//! of elements. Errors name the rule broken and a byte offset, never the document's text.

mod inbound;
mod reply;

pub use inbound::{Event, Inbound, InboundKind};
pub use reply::{EncryptedReply, Envelope, Reply, SUCCESS, cdata, encrypted_reply, text_reply};

use quick_xml::Reader;
use quick_xml::events::Event as XmlEvent;

/// Largest document accepted. WeChat's pushes are well under 4 KiB (a compat-mode text is
/// about 3× plain); 64 KiB leaves room and bounds the parse.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Deepest element nesting accepted (`<xml>` is depth 1; WeChat's deepest event is 4).
pub const MAX_DEPTH: usize = 8;
/// Most elements accepted in one document.
pub const MAX_ELEMENTS: usize = 256;

/// Why a document was refused. Carries no document text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("document is {0} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("document is not UTF-8")]
    NotUtf8,
    #[error("DOCTYPE declarations are not accepted")]
    DocType,
    #[error("processing instructions are not accepted")]
    ProcessingInstruction,
    #[error(
        "entity references other than the five predefined and numeric ones are not accepted (at byte {0})"
    )]
    Entity(u64),
    #[error("elements nest deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("document has more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("root element must be <xml>")]
    Root,
    #[error("malformed XML at byte {0}")]
    Malformed(u64),
    #[error("document ends before its root element is closed")]
    Truncated,
    #[error("required field <{0}> is missing")]
    Missing(&'static str),
    #[error("field <{0}> is not valid")]
    Invalid(&'static str),
}

/// The direct text children of the `<xml>` root, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses a document under the rules of this module.
    pub fn parse(body: &[u8]) -> Result<Fields, XmlError> {
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(XmlError::TooLarge(body.len()));
        }
        let text = std::str::from_utf8(body).map_err(|_| XmlError::NotUtf8)?;
        parse_str(text)
    }

    /// The first field of that name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field that must be present (empty text counts as present).
    pub fn require(&self, name: &'static str) -> Result<&str, XmlError> {
        self.get(name).ok_or(XmlError::Missing(name))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

fn parse_str(text: &str) -> Result<Fields, XmlError> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;

    let mut fields = Vec::new();
    let mut depth = 0usize;
    let mut elements = 0usize;
    let mut seen_root = false;
    // The leaf being read: its name and text so far. Only direct children of the root.
    let mut leaf: Option<(String, String)> = None;

    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|_| XmlError::Malformed(reader.error_position()))?;
        match event {
            XmlEvent::DocType(_) => return Err(XmlError::DocType),
            XmlEvent::PI(_) => return Err(XmlError::ProcessingInstruction),
            XmlEvent::Decl(_) if !seen_root => {}
            XmlEvent::Decl(_) => return Err(XmlError::ProcessingInstruction),
            XmlEvent::Comment(_) => {}
            XmlEvent::Empty(start) if depth == 0 => {
                // `<xml/>`: an empty document.
                if seen_root || start.local_name().as_ref() != "xml" {
                    return Err(XmlError::Root);
                }
                return finish(&mut reader, fields);
            }
            XmlEvent::Start(start) if depth == 0 => {
                if seen_root || start.local_name().as_ref() != "xml" {
                    return Err(XmlError::Root);
                }
                seen_root = true;
                elements += 1;
                depth = 1;
            }
            XmlEvent::Start(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                if depth == 2 {
                    let name = start.local_name().as_ref().to_owned();
                    leaf = Some((name, String::new()));
                } else if depth == 3 {
                    // A nested structure: not a text field; skip it as a whole.
                    leaf = None;
                }
            }
            XmlEvent::Empty(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if depth == 1 {
                    let name = start.local_name().as_ref().to_owned();
                    fields.push((name, String::new()));
                } else if depth == 2 {
                    leaf = None;
                }
            }
            XmlEvent::End(_) => {
                if depth == 2
                    && let Some(done) = leaf.take()
                {
                    fields.push(done);
                }
                // quick-xml refuses unmatched ends itself; this only keeps arithmetic honest.
                depth = depth.checked_sub(1).ok_or(XmlError::Malformed(at))?;
                if depth == 0 {
                    return finish(&mut reader, fields);
                }
            }
            XmlEvent::Text(t) => {
                if let Some((_, value)) = leaf.as_mut() {
                    value.push_str(&t.xml10_content());
                } else if depth <= 1 && !t.xml10_content().trim().is_empty() {
                    // Text directly under the root (or outside it) is not WeChat's shape.
                    return Err(XmlError::Malformed(at));
                }
            }
            XmlEvent::CData(c) => {
                if let Some((_, value)) = leaf.as_mut() {
                    value.push_str(&c.xml10_content());
                } else if depth <= 1 {
                    return Err(XmlError::Malformed(at));
                }
            }
            XmlEvent::GeneralRef(r) => {
                let ch = resolve_reference(&r).ok_or(XmlError::Entity(at))?;
                if let Some((_, value)) = leaf.as_mut() {
                    value.push(ch);
                } else if depth <= 1 {
                    return Err(XmlError::Malformed(at));
                }
            }
            XmlEvent::Eof => {
                return Err(if seen_root {
                    XmlError::Truncated
                } else {
                    XmlError::Root
                });
            }
        }
    }
}

/// After the root closes only whitespace and comments may follow.
fn finish(reader: &mut Reader<&[u8]>, fields: Vec<(String, String)>) -> Result<Fields, XmlError> {
    loop {
        let at = reader.buffer_position();
        match reader
            .read_event()
            .map_err(|_| XmlError::Malformed(reader.error_position()))?
        {
            XmlEvent::Eof => return Ok(Fields(fields)),
            XmlEvent::Comment(_) => {}
            XmlEvent::Text(t) if t.xml10_content().trim().is_empty() => {}
            XmlEvent::DocType(_) => return Err(XmlError::DocType),
            XmlEvent::PI(_) | XmlEvent::Decl(_) => return Err(XmlError::ProcessingInstruction),
            _ => return Err(XmlError::Malformed(at)),
        }
    }
}

/// Escapes text for an element's content (for values not worth a CDATA section).
pub(crate) fn escape_text(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// The five predefined entities and numeric character references; anything else is refused.
fn resolve_reference(r: &quick_xml::events::BytesRef<'_>) -> Option<char> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(ch)) => Some(ch),
            _ => None,
        };
    }
    match &**r {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
