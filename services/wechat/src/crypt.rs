//! WXBizMsgCrypt, WeChat's safe-mode cipher: AES-256-CBC with IV = key[..16], no cipher-level
//! padding, and PKCS#7 to 32-byte blocks applied by hand.
//!
//! Plaintext layout: `random(16) || u32_be(len(msg)) || msg || appid`. Every field of a
//! decrypted buffer is checked (pad value and bytes, length field within bounds, UTF-8), so
//! arbitrary input yields an error value, never a panic.
//!
//! CBC is written out here over the `aes` block cipher rather than taken from the `cbc` crate:
//! with no padding it is ten lines, and WeChat's 32-byte PKCS#7 (not the cipher's 16) must be
//! done by hand anyway — the pitfall of wx-sdk and Tencent/WeKnora#2832 was exactly a
//! library's 16-byte unpadding.

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

/// WeChat's PKCS#7 block: 32 bytes, not AES's 16.
const PAD_BLOCK: usize = 32;
const AES_BLOCK: usize = 16;
const RANDOM_LEN: usize = 16;
const LEN_FIELD: usize = 4;

/// Why a key or a ciphertext was refused. Never carries key, plaintext or ciphertext bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error("EncodingAESKey must be 43 characters from [A-Za-z0-9], got {0} characters")]
    KeyLength(usize),
    #[error("EncodingAESKey contains a character outside [A-Za-z0-9]")]
    KeyAlphabet,
    #[error("ciphertext is not valid base64")]
    Base64,
    #[error("ciphertext length {0} is not a positive multiple of the 16-byte AES block")]
    CipherLength(usize),
    #[error("decrypted padding is invalid (wrong key or tampered ciphertext)")]
    Padding,
    #[error("decrypted message length field points past the end of the buffer")]
    LengthField,
    #[error("decrypted message is not UTF-8")]
    NotUtf8,
    #[error("message was encrypted for another appid")]
    AppIdMismatch,
}

/// The 32-byte AES key behind an EncodingAESKey. Debug never prints it.
#[derive(Clone)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

impl AesKey {
    /// Parses the 43-character EncodingAESKey from the Official Account's settings:
    /// `base64_decode(key + "=")`.
    pub fn parse(encoding_aes_key: &str) -> Result<AesKey, CryptError> {
        let chars = encoding_aes_key.chars().count();
        if chars != 43 {
            return Err(CryptError::KeyLength(chars));
        }
        if !encoding_aes_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CryptError::KeyAlphabet);
        }
        // The 43rd character carries 2 bits beyond the 32 bytes; WeChat's keys do not keep
        // them zero (the official sample key ends in 'G'), and the official Java sample
        // (commons-codec) ignores them, so the decoder must too.
        let engine = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let bytes = engine
            .decode(encoding_aes_key)
            .map_err(|_| CryptError::KeyAlphabet)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptError::KeyLength(chars))?;
        Ok(AesKey(key))
    }
}

/// What a ciphertext held: the message XML and the appid it was sealed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    pub xml: String,
    pub appid: String,
}

/// One Official Account's cipher: its key schedule, IV and appid.
#[derive(Clone)]
pub struct MsgCrypt {
    cipher: Aes256,
    iv: [u8; AES_BLOCK],
    appid: String,
}

impl std::fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt")
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

impl MsgCrypt {
    pub fn new(key: AesKey, appid: &str) -> MsgCrypt {
        let mut iv = [0u8; AES_BLOCK];
        iv.copy_from_slice(&key.0[..AES_BLOCK]);
        MsgCrypt {
            cipher: Aes256::new(GenericArray::from_slice(&key.0)),
            iv,
            appid: appid.to_owned(),
        }
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// Seals `xml` for this appid with the given 16 random bytes (fixed only in tests and
    /// vectors); returns the base64 `Encrypt` text.
    pub fn encrypt(&self, xml: &str, random: [u8; 16]) -> String {
        let msg = xml.as_bytes();
        let body = RANDOM_LEN + LEN_FIELD + msg.len() + self.appid.len();
        // Always pad, a full block when already aligned (esap/wechat#43: Tencent cannot
        // decrypt a reply without it).
        let pad = PAD_BLOCK - body % PAD_BLOCK;
        let mut buf = Vec::with_capacity(body + pad);
        buf.extend_from_slice(&random);
        // A message over 4 GiB cannot reach here (bodies are capped far below), so the
        // saturating cast never changes a real length.
        buf.extend_from_slice(&u32::try_from(msg.len()).unwrap_or(u32::MAX).to_be_bytes());
        buf.extend_from_slice(msg);
        buf.extend_from_slice(self.appid.as_bytes());
        buf.resize(body + pad, pad as u8);

        let mut prev = self.iv;
        for chunk in buf.chunks_exact_mut(AES_BLOCK) {
            for (b, p) in chunk.iter_mut().zip(prev.iter()) {
                *b ^= p;
            }
            let block = GenericArray::from_mut_slice(chunk);
            self.cipher.encrypt_block(block);
            prev.copy_from_slice(chunk);
        }
        STANDARD.encode(&buf)
    }

    /// [`MsgCrypt::encrypt`] with fresh random bytes, as every real reply is sealed.
    pub fn encrypt_random(&self, xml: &str) -> String {
        self.encrypt(xml, rand::random::<[u8; 16]>())
    }

    /// Opens a base64 `Encrypt` text. The appid inside is returned, not checked: see
    /// [`MsgCrypt::decrypt_for_app`] for the check every receiver must make.
    pub fn decrypt(&self, b64: &str) -> Result<Decrypted, CryptError> {
        let mut buf = STANDARD
            .decode(b64.trim())
            .map_err(|_| CryptError::Base64)?;
        if buf.is_empty() || buf.len() % AES_BLOCK != 0 {
            return Err(CryptError::CipherLength(buf.len()));
        }
        let mut prev = self.iv;
        for chunk in buf.chunks_exact_mut(AES_BLOCK) {
            let mut this = [0u8; AES_BLOCK];
            this.copy_from_slice(chunk);
            self.cipher
                .decrypt_block(GenericArray::from_mut_slice(chunk));
            for (b, p) in chunk.iter_mut().zip(prev.iter()) {
                *b ^= p;
            }
            prev = this;
        }
        let plain = unpad(&buf)?;
        if plain.len() < RANDOM_LEN + LEN_FIELD {
            return Err(CryptError::LengthField);
        }
        let mut len_bytes = [0u8; LEN_FIELD];
        len_bytes.copy_from_slice(&plain[RANDOM_LEN..RANDOM_LEN + LEN_FIELD]);
        let msg_len = u32::from_be_bytes(len_bytes) as usize;
        let rest = &plain[RANDOM_LEN + LEN_FIELD..];
        if msg_len > rest.len() {
            return Err(CryptError::LengthField);
        }
        let (msg, appid) = rest.split_at(msg_len);
        let xml = std::str::from_utf8(msg).map_err(|_| CryptError::NotUtf8)?;
        let appid = std::str::from_utf8(appid).map_err(|_| CryptError::NotUtf8)?;
        Ok(Decrypted {
            xml: xml.to_owned(),
            appid: appid.to_owned(),
        })
    }

    /// [`MsgCrypt::decrypt`], refusing a message sealed for another appid.
    pub fn decrypt_for_app(&self, b64: &str) -> Result<String, CryptError> {
        let opened = self.decrypt(b64)?;
        if opened.appid != self.appid {
            return Err(CryptError::AppIdMismatch);
        }
        Ok(opened.xml)
    }
}

/// Strips PKCS#7 to 32-byte blocks, checking the pad value is 1..=32 and every pad byte.
fn unpad(buf: &[u8]) -> Result<&[u8], CryptError> {
    let n = *buf.last().ok_or(CryptError::Padding)? as usize;
    if n == 0 || n > PAD_BLOCK || n > buf.len() {
        return Err(CryptError::Padding);
    }
    let (plain, pad) = buf.split_at(buf.len() - n);
    if pad.iter().any(|&b| b as usize != n) {
        return Err(CryptError::Padding);
    }
    Ok(plain)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    pub(crate) const SAMPLE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    pub(crate) const VECTOR_C_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
    pub(crate) const VECTOR_C_XML: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>";

    fn crypt(appid: &str) -> MsgCrypt {
        MsgCrypt::new(
            AesKey::parse(SAMPLE_KEY).expect("sample key is valid"),
            appid,
        )
    }

    #[test]
    fn vector_a1_encrypt_with_fixed_random() {
        let random = *b"aaaabbbbccccdddd";
        let got = crypt("wxb11529c136998cb6").encrypt("我是中文abcd123", random);
        assert_eq!(
            got,
            "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
        );
        let back = crypt("wxb11529c136998cb6")
            .decrypt(&got)
            .expect("round trip");
        assert_eq!(back.xml, "我是中文abcd123");
    }

    #[test]
    fn vector_c_decrypts_byte_exact_with_its_appid() {
        let c = crypt("wx2c2769f8efd9abc2");
        let opened = c.decrypt(VECTOR_C_ENCRYPT).expect("vector C decrypts");
        assert_eq!(opened.xml, VECTOR_C_XML);
        assert_eq!(opened.appid, "wx2c2769f8efd9abc2");
        assert_eq!(
            c.decrypt_for_app(VECTOR_C_ENCRYPT).as_deref(),
            Ok(VECTOR_C_XML)
        );
    }

    #[test]
    fn vector_c_under_another_appid_is_refused() {
        assert_eq!(
            crypt("wx0000000000000000").decrypt_for_app(VECTOR_C_ENCRYPT),
            Err(CryptError::AppIdMismatch)
        );
    }

    #[test]
    fn vector_c_random_prefix_and_pad_length_match_the_spec() {
        // Re-derive the raw plaintext to check the documented random16 and pad of 2.
        let c = crypt("wx2c2769f8efd9abc2");
        let mut random = [0u8; 16];
        let raw = STANDARD.decode(VECTOR_C_ENCRYPT).expect("base64");
        let opened = c.decrypt(VECTOR_C_ENCRYPT).expect("decrypts");
        let body = 16 + 4 + opened.xml.len() + opened.appid.len();
        assert_eq!(raw.len() - body, 2, "pkcs7 pad len");
        // Encrypting the same message with the documented random prefix must give the same
        // ciphertext back, which pins random16 = 89465c840c5f116f (as 16 ASCII bytes).
        random.copy_from_slice(b"89465c840c5f116f");
        assert_eq!(c.encrypt(VECTOR_C_XML, random), VECTOR_C_ENCRYPT);
    }

    #[test]
    fn key_of_wrong_length_or_alphabet_is_refused() {
        assert_eq!(
            AesKey::parse("abc").map(|_| ()),
            Err(CryptError::KeyLength(3))
        );
        let bad = format!("{}+", &SAMPLE_KEY[..42]);
        assert_eq!(
            AesKey::parse(&bad).map(|_| ()),
            Err(CryptError::KeyAlphabet)
        );
    }

    #[test]
    fn aligned_message_gets_a_full_pad_block() {
        // 16 + 4 + 8 + 4 = 32 bytes: the pad must be a whole extra 32-byte block.
        let c = crypt("wxid");
        let sealed = c.encrypt("12345678", [0u8; 16]);
        assert_eq!(STANDARD.decode(&sealed).expect("base64").len(), 64);
        assert_eq!(c.decrypt(&sealed).expect("opens").xml, "12345678");
    }

    #[test]
    fn tampered_ciphertext_is_an_error() {
        let c = crypt("wx2c2769f8efd9abc2");
        let mut raw = STANDARD.decode(VECTOR_C_ENCRYPT).expect("base64");
        let last = raw.len() - 1;
        raw[last] ^= 0x01;
        let tampered = STANDARD.encode(&raw);
        assert!(c.decrypt_for_app(&tampered).is_err());
        assert_eq!(c.decrypt("not base64!"), Err(CryptError::Base64));
        assert_eq!(c.decrypt("AAAA"), Err(CryptError::CipherLength(3)));
        assert_eq!(c.decrypt(""), Err(CryptError::CipherLength(0)));
    }

    #[test]
    fn wrong_key_fails_cleanly() {
        let other = MsgCrypt::new(
            AesKey::parse("ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut").expect("valid"),
            "wx2c2769f8efd9abc2",
        );
        assert!(other.decrypt_for_app(VECTOR_C_ENCRYPT).is_err());
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
    fn fuzz_decrypt_never_panics() {
        let c = crypt("wx2c2769f8efd9abc2");
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let valid = STANDARD.decode(VECTOR_C_ENCRYPT).expect("base64");
        for i in 0..fuzz_iterations(20_000) {
            let bytes: Vec<u8> = if i % 2 == 0 {
                let len = rng.gen_range(0..200);
                (0..len).map(|_| rng.r#gen::<u8>()).collect()
            } else {
                let mut v = valid.clone();
                let flips = rng.gen_range(1..4);
                for _ in 0..flips {
                    let at = rng.gen_range(0..v.len());
                    v[at] = rng.r#gen();
                }
                v.truncate(rng.gen_range(0..=v.len()));
                v
            };
            let _ = c.decrypt(&STANDARD.encode(&bytes));
            if let Ok(s) = std::str::from_utf8(&bytes) {
                let _ = c.decrypt(s);
            }
        }
    }

    proptest! {
        #[test]
        fn encrypt_then_decrypt_round_trips(
            msg in "\\PC{0,300}",
            appid in "[a-z0-9]{0,24}",
            random in proptest::array::uniform16(any::<u8>()),
        ) {
            let c = crypt(&appid);
            let sealed = c.encrypt(&msg, random);
            prop_assert_eq!(STANDARD.decode(&sealed).expect("base64").len() % 32, 0);
            let opened = c.decrypt(&sealed).expect("opens");
            prop_assert_eq!(opened.xml, msg);
            prop_assert_eq!(opened.appid, appid);
        }
    }
}
