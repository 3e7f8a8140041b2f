//! Parsing under hostile input, the published bodies, and round trips.

use super::*;
use crate::crypt::tests::{VECTOR_C_ENCRYPT, VECTOR_C_XML};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

const VECTOR_C_BODY: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>";

fn text_message() -> Inbound {
    Inbound {
        to_user: "gh_10f6c3c3ac5a".into(),
        from_user: "oyORnuP8q7ou2gfYjqLzSIWZf0rs".into(),
        create_time: 1409735668,
        msg_id: Some(6054768590064713728),
        kind: InboundKind::Text {
            content: "abcdteT".into(),
        },
    }
}

#[test]
fn vector_c_compat_body_has_both_the_plain_fields_and_the_envelope() {
    let envelope = Envelope::parse(VECTOR_C_BODY.as_bytes()).expect("envelope");
    assert_eq!(envelope.encrypt, VECTOR_C_ENCRYPT);
    assert_eq!(envelope.to_user.as_deref(), Some("gh_10f6c3c3ac5a"));
    assert_eq!(Inbound::parse(VECTOR_C_BODY.as_bytes()), Ok(text_message()));
}

#[test]
fn vector_c_decrypted_message_parses_with_its_newlines() {
    assert_eq!(Inbound::parse(VECTOR_C_XML.as_bytes()), Ok(text_message()));
}

#[test]
fn documented_events_parse() {
    let ev = |inner: &str| {
        let body = format!(
            "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>{inner}</xml>"
        );
        match Inbound::parse(body.as_bytes()).expect("parses").kind {
            InboundKind::Event(e) => e,
            other => panic!("not an event: {other:?}"),
        }
    };
    assert_eq!(
        ev("<Event><![CDATA[subscribe]]></Event>"),
        Event::Subscribe { scene: None }
    );
    assert_eq!(
        ev(
            "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>"
        ),
        Event::Subscribe {
            scene: Some("123123".into())
        }
    );
    assert_eq!(
        ev("<Event><![CDATA[unsubscribe]]></Event>"),
        Event::Unsubscribe
    );
    assert_eq!(
        ev("<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[EVENTKEY]]></EventKey>"),
        Event::Click {
            key: "EVENTKEY".into()
        }
    );
    assert_eq!(
        ev(
            "<Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[www.qq.com]]></EventKey><MenuId>MENUID</MenuId>"
        ),
        Event::View {
            url: "www.qq.com".into()
        }
    );
    assert_eq!(
        ev("<Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[SCENE_VALUE]]></EventKey>"),
        Event::Scan {
            key: "SCENE_VALUE".into()
        }
    );
    assert_eq!(
        ev(
            "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>"
        ),
        Event::Other {
            name: "TEMPLATESENDJOBFINISH".into()
        }
    );
    // Nested structures (scancode_push) are skipped, not refused.
    assert_eq!(
        ev(
            "<Event><![CDATA[scancode_push]]></Event><ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo>"
        ),
        Event::Other {
            name: "scancode_push".into()
        }
    );
}

#[test]
fn image_message_parses() {
    let body = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[this is a url]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId><MsgId>1234567890123456</MsgId></xml>";
    let m = Inbound::parse(body.as_bytes()).expect("parses");
    assert_eq!(m.msg_id, Some(1234567890123456));
    assert_eq!(
        m.kind,
        InboundKind::Image {
            pic_url: "this is a url".into(),
            media_id: "media_id".into()
        }
    );
}

#[test]
fn two_menu_taps_in_one_second_are_two_pushes_and_a_retry_is_one() {
    let click = |key: &str| {
        let body = format!(
            "<xml><ToUserName>gh_a</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1733100000</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey>{key}</EventKey></xml>"
        );
        Inbound::parse(body.as_bytes()).expect("parses")
    };
    assert_ne!(click("QUERY").dedupe_key(), click("POLICY").dedupe_key());
    assert_eq!(click("QUERY").dedupe_key(), click("QUERY").dedupe_key());
}

#[test]
fn predefined_and_numeric_references_are_resolved() {
    let body = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&lt;&amp;&#x67E5;&#35810;&gt;</Content></xml>";
    let m = Inbound::parse(body.as_bytes()).expect("parses");
    assert_eq!(
        m.kind,
        InboundKind::Text {
            content: "<&查询>".into()
        }
    );
}

#[test]
fn billion_laughs_is_refused_at_the_doctype() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><Content>&lol3;</Content></xml>"#;
    assert_eq!(Fields::parse(bomb.as_bytes()), Err(XmlError::DocType));
}

#[test]
fn external_entity_doctype_is_refused() {
    let xxe = r#"<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Content>&xxe;</Content></xml>"#;
    assert_eq!(Fields::parse(xxe.as_bytes()), Err(XmlError::DocType));
}

#[test]
fn undeclared_entity_is_refused_without_naming_it() {
    let err = Fields::parse(b"<xml><Content>&secretname;</Content></xml>").expect_err("refused");
    assert!(matches!(err, XmlError::Entity(_)));
    assert!(!err.to_string().contains("secretname"));
}

#[test]
fn processing_instruction_is_refused_but_the_declaration_is_not() {
    assert_eq!(
        Fields::parse(b"<xml><?evil x?><A>1</A></xml>"),
        Err(XmlError::ProcessingInstruction)
    );
    let ok = Fields::parse(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><xml><A>1</A></xml>")
        .expect("ok");
    assert_eq!(ok.get("A"), Some("1"));
}

#[test]
fn caps_on_size_depth_and_elements() {
    let big = format!("<xml><A>{}</A></xml>", "x".repeat(MAX_DOCUMENT_BYTES));
    assert_eq!(
        Fields::parse(big.as_bytes()),
        Err(XmlError::TooLarge(big.len()))
    );
    let deep = format!(
        "<xml>{}{}</xml>",
        "<a>".repeat(MAX_DEPTH),
        "</a>".repeat(MAX_DEPTH)
    );
    assert_eq!(Fields::parse(deep.as_bytes()), Err(XmlError::TooDeep));
    let many = format!("<xml>{}</xml>", "<a>1</a>".repeat(MAX_ELEMENTS + 1));
    assert_eq!(
        Fields::parse(many.as_bytes()),
        Err(XmlError::TooManyElements)
    );
}

#[test]
fn structural_errors_name_the_rule_not_the_text() {
    let cases: [(&[u8], XmlError); 6] = [
        (b"", XmlError::Root),
        (b"<root><A>1</A></root>", XmlError::Root),
        (b"<xml><A>openid-secret", XmlError::Truncated),
        (b"<xml>loose text</xml>", XmlError::Malformed(5)),
        (b"\xff\xfe", XmlError::NotUtf8),
        (b"<xml></xml><xml></xml>", XmlError::Malformed(11)),
    ];
    for (body, want) in cases {
        assert_eq!(Fields::parse(body), Err(want));
    }
    let err = Fields::parse(b"<xml><A>openid-secret</B></xml>").expect_err("mismatch");
    assert!(matches!(err, XmlError::Malformed(_)));
    assert!(!err.to_string().contains("openid"));
    assert_eq!(
        Inbound::parse(b"<xml><ToUserName>a</ToUserName></xml>"),
        Err(XmlError::Missing("FromUserName"))
    );
    assert_eq!(
        Inbound::parse(b"<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>x</CreateTime><MsgType>text</MsgType></xml>"),
        Err(XmlError::Invalid("CreateTime"))
    );
}

#[test]
fn text_reply_matches_the_documented_shape_and_reads_back() {
    let x = text_reply("toUser", "fromUser", 12345678, "你好");
    assert_eq!(
        x,
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName><CreateTime>12345678</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content></xml>"
    );
    assert_eq!(
        Reply::parse(x.as_bytes()),
        Ok(Reply::Text {
            to_user: "toUser".into(),
            from_user: "fromUser".into(),
            create_time: 12345678,
            content: "你好".into()
        })
    );
}

#[test]
fn cdata_terminator_in_content_survives() {
    let x = text_reply("a", "b", 1, "x]]>y");
    match Reply::parse(x.as_bytes()).expect("parses") {
        Reply::Text { content, .. } => assert_eq!(content, "x]]>y"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn encrypted_reply_seals_signs_and_reads_back() {
    let crypt = crate::MsgCrypt::new(
        crate::AesKey::parse("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").expect("key"),
        "wx2c2769f8efd9abc2",
    );
    let sealed = EncryptedReply::seal(&crypt, "spamtest", "<xml/>", "1409735669", "1320562132");
    let back = EncryptedReply::parse(sealed.to_xml().as_bytes()).expect("parses");
    assert_eq!(back, sealed);
    assert!(back.verify("spamtest"));
    assert!(!back.verify("other"));
    assert_eq!(
        crypt.decrypt_for_app(&back.encrypt).as_deref(),
        Ok("<xml/>")
    );
}

/// Iterations of a fuzz loop: `default` in the test suite, `PROPTEST_CASES` when a long run
/// (docs/security.md, Fuzzing) asks for more, as it does for the proptest targets.
fn fuzz_iterations(default: usize) -> usize {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse::<usize>().ok())
        .map_or(default, |cases| cases.max(default))
}

#[test]
fn fuzz_parse_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let seeds: [&[u8]; 3] = [
        VECTOR_C_BODY.as_bytes(),
        VECTOR_C_XML.as_bytes(),
        b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY b \"c\">]><xml><A>&b;&#x1;&#0;</A><B/></xml>",
    ];
    let alphabet = b"<>/![]CDAT&;#x?=\"' xmlA-\n";
    for i in 0..fuzz_iterations(30_000) {
        let bytes: Vec<u8> = match i % 3 {
            0 => {
                let len = rng.gen_range(0..120);
                (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect()
            }
            1 => {
                let len = rng.gen_range(0..120);
                (0..len).map(|_| rng.r#gen::<u8>()).collect()
            }
            _ => {
                let mut v = seeds[rng.gen_range(0..seeds.len())].to_vec();
                for _ in 0..rng.gen_range(1..5) {
                    let at = rng.gen_range(0..v.len());
                    v[at] = alphabet[rng.gen_range(0..alphabet.len())];
                }
                v.truncate(rng.gen_range(0..=v.len()));
                v
            }
        };
        let _ = Inbound::parse(&bytes);
        let _ = Envelope::parse(&bytes);
        let _ = Reply::parse(&bytes);
    }
}

fn arb_event() -> impl Strategy<Value = Event> {
    let s = "[^\r]{0,40}";
    prop_oneof![
        proptest::option::of("[a-zA-Z0-9_]{1,20}").prop_map(|scene| Event::Subscribe { scene }),
        Just(Event::Unsubscribe),
        s.prop_map(|key| Event::Click { key }),
        s.prop_map(|url| Event::View { url }),
        s.prop_map(|key| Event::Scan { key }),
        "[A-Z_]{1,12}"
            .prop_filter("not a known event", |n| {
                !["SUBSCRIBE", "UNSUBSCRIBE", "CLICK", "VIEW", "SCAN"].contains(&n.as_str())
            })
            .prop_map(|name| Event::Other { name }),
    ]
}

fn arb_inbound() -> impl Strategy<Value = Inbound> {
    let text = "[^\r]{0,60}";
    let kind = prop_oneof![
        text.prop_map(|content| InboundKind::Text { content }),
        (text, "[A-Za-z0-9_-]{1,40}")
            .prop_map(|(pic_url, media_id)| InboundKind::Image { pic_url, media_id }),
        "(voice|video|location|link)".prop_map(|msg_type| InboundKind::Other { msg_type }),
        arb_event().prop_map(InboundKind::Event),
    ];
    (
        text,
        text,
        any::<i64>(),
        proptest::option::of(any::<u64>()),
        kind,
    )
        .prop_map(|(to_user, from_user, create_time, msg_id, kind)| Inbound {
            to_user,
            from_user,
            create_time,
            msg_id,
            kind,
        })
}

proptest! {
    #[test]
    fn inbound_written_then_parsed_is_the_same(m in arb_inbound()) {
        prop_assert_eq!(Inbound::parse(m.to_xml().as_bytes()), Ok(m));
    }

    #[test]
    fn envelope_round_trips(to in proptest::option::of("[a-z_0-9]{1,20}"), enc in "[A-Za-z0-9+/=]{0,200}") {
        let e = Envelope { to_user: to, encrypt: enc };
        let back = Envelope::parse(e.to_xml().as_bytes()).expect("parses");
        prop_assert_eq!(back.encrypt, e.encrypt);
    }

    #[test]
    fn dedupe_key_is_stable_and_hides_the_openid(m in arb_inbound()) {
        let key = m.dedupe_key();
        prop_assert_eq!(&key, &m.dedupe_key());
        if m.msg_id.is_none() {
            // Short ids could match hex digits of the hash by chance; real openids are 28 characters.
            prop_assert!(m.from_user.chars().count() < 12 || !key.contains(&m.from_user));
        }
    }
}
