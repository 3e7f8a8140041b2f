//! The passive replies the sim reads back, nested elements included
//! (`Image/MediaId`, which the protocol crate's flat view skips).

use std::collections::HashMap;

use quick_xml::{Reader, events::Event};

pub use huimin_wechat::xml::cdata;

/// The leaf elements under `<xml>`, by path below it (`Content`,
/// `Image/MediaId`). Refuses a DOCTYPE: the sim reads what a service wrote,
/// and a service has no business sending one.
pub fn leaves(xml: &str) -> Result<HashMap<String, String>, String> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut out = HashMap::new();
    let mut text = String::new();
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("malformed xml: {e}"))?
        {
            Event::Start(start) => {
                path.push(start.local_name().as_ref().to_owned());
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(c) => text.push_str(&c.xml10_content()),
            // Only the five predefined entities and character references.
            Event::GeneralRef(r) => match r.as_ref() {
                "amp" => text.push('&'),
                "lt" => text.push('<'),
                "gt" => text.push('>'),
                "quot" => text.push('"'),
                "apos" => text.push('\''),
                other => {
                    let ch = other
                        .strip_prefix("#x")
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                        .or_else(|| other.strip_prefix('#').and_then(|d| d.parse().ok()))
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("unknown entity &{other};"))?;
                    text.push(ch);
                }
            },
            Event::End(_) => {
                if path.len() > 1 {
                    out.insert(path[1..].join("/"), std::mem::take(&mut text));
                }
                path.pop();
            }
            Event::DocType(_) => return Err("a DOCTYPE in a reply".to_owned()),
            Event::Eof => break,
            _ => {}
        }
    }
    if out.is_empty() {
        return Err("no elements under <xml>".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_by_path_with_cdata_and_nesting() {
        let xml = "<xml><Content><![CDATA[你好 &]]></Content><Image><MediaId><![CDATA[m1]]></MediaId></Image><CreateTime>12</CreateTime></xml>";
        let leaves = leaves(xml).expect("parses");
        assert_eq!(leaves["Content"], "你好 &");
        assert_eq!(leaves["Image/MediaId"], "m1");
        assert_eq!(leaves["CreateTime"], "12");
    }

    #[test]
    fn cdata_survives_its_own_terminator() {
        let xml = format!("<xml><Content>{}</Content></xml>", cdata("a]]>b"));
        assert_eq!(leaves(&xml).expect("parses")["Content"], "a]]>b");
    }

    #[test]
    fn a_doctype_is_refused() {
        assert!(leaves("<!DOCTYPE x [<!ENTITY a 'b'>]><xml><A>&a;</A></xml>").is_err());
    }
}
