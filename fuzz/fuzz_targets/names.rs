//! Repository names, tags, digests, references and upload ids: whatever parses prints back to
//! itself and parses again to the same value.
#![no_main]

use berth_types::{Digest, Reference, RepositoryName, Tag, UploadId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(n) = RepositoryName::parse(s) {
        assert_eq!(n.as_str(), s);
        assert_eq!(RepositoryName::parse(&n.to_string()).as_ref(), Ok(&n));
    }
    if let Ok(t) = Tag::parse(s) {
        assert_eq!(t.as_str(), s);
        assert_eq!(Tag::parse(&t.to_string()).as_ref(), Ok(&t));
    }
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(d.as_str(), s);
        assert_eq!(Digest::parse(&d.to_string()).as_ref(), Ok(&d));
        assert_eq!(d.as_str(), format!("{}:{}", d.algorithm().as_str(), d.hex()));
        assert_eq!(s.parse::<Digest>().ok().as_ref(), Some(&d));
    }
    if let Ok(r) = Reference::parse(s) {
        assert_eq!(r.to_string(), s);
        assert_eq!(Reference::parse(&r.to_string()).as_ref(), Ok(&r));
        // A reference is a digest exactly when the text parses as one.
        assert_eq!(matches!(r, Reference::Digest(_)), Digest::parse(s).is_ok(), "{s:?}");
    }
    if let Ok(u) = UploadId::parse(s) {
        // Any UUID spelling names the session; its id is the lowercase hyphenated form.
        assert_eq!(u.as_str().len(), 36);
        assert_eq!(u.as_str(), u.as_str().to_ascii_lowercase());
        assert_eq!(UploadId::parse(&u.to_string()).as_ref(), Ok(&u));
    }
});
