//! Conformance suite every `BlobStore` implementation runs from its own tests.

use bytes::Bytes;
use futures_util::{StreamExt, stream};

use berth_types::{Algorithm, Digest, UploadId};

use crate::{BlobStore, ByteRange, ByteStream, Error};

fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
    stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed()
}

async fn collect(s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = s;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("read chunk"));
    }
    out
}

/// Runs every check against a fresh, empty store.
///
/// # Panics
/// On the first behaviour that breaks the `BlobStore` contract.
pub async fn run(store: &dyn BlobStore) {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let digest = Digest::of(Algorithm::Sha256, &data);
    assert!(store.stat(&digest).await.unwrap().is_none());
    assert!(matches!(store.read(&digest, None).await, Err(Error::NotFound)));

    // Chunked append, with a failed append in the middle that must leave nothing behind.
    let id = UploadId::generate();
    let mut parts = Vec::new();
    let first = store.upload_append(&id, 0, body(vec![data[..1000].to_vec()])).await.unwrap();
    assert_eq!(first.len, 1000);
    let names_parts = first.part.is_some();
    parts.extend(first.part);
    let failing: ByteStream =
        stream::iter(vec![Ok(Bytes::from(data[1000..2000].to_vec())), Err("client went away".into())]).boxed();
    assert!(matches!(store.upload_append(&id, 1000, failing).await, Err(Error::Body(_))));
    if !names_parts {
        // A store writing in place checks offsets itself; one naming parts leaves that to the
        // conditional write of the metadata.
        assert!(matches!(
            store.upload_append(&id, 5000, body(vec![vec![1]])).await,
            Err(Error::UploadOffset { requested: 5000, actual: 1000 })
        ));
    }
    let rest = data[1000..].chunks(65_536).map(<[u8]>::to_vec).collect();
    let second = store.upload_append(&id, 1000, body(rest)).await.unwrap();
    assert_eq!(second.len, data.len() as u64);
    assert_eq!(second.part.is_some(), names_parts, "a store names every part or none");
    parts.extend(second.part);
    assert_eq!(collect(store.upload_read(&id, &parts).await.unwrap()).await, data);
    assert_eq!(store.upload_commit(&id, &parts, &digest).await.unwrap(), data.len() as u64);
    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));

    let r = store.read(&digest, None).await.unwrap();
    assert_eq!(r.size, data.len() as u64);
    assert_eq!(collect(r.body.into_stream()).await, data);
    let range = ByteRange { start: 1_048_570, end: 1_048_589 };
    let r = store.read(&digest, Some(range)).await.unwrap();
    assert_eq!(collect(r.body.into_stream()).await, data[1_048_570..=1_048_589]);
    let beyond = ByteRange { start: 0, end: data.len() as u64 };
    assert!(matches!(store.read(&digest, Some(beyond)).await, Err(Error::InvalidRange)));

    // Committing identical content again is harmless.
    let id2 = UploadId::generate();
    let part = store.upload_append(&id2, 0, body(vec![data.clone()])).await.unwrap().part;
    store.upload_commit(&id2, &Vec::from_iter(part), &digest).await.unwrap();
    assert_eq!(collect(store.read(&digest, None).await.unwrap().body.into_stream()).await, data);

    // Small blobs in one step, also over an existing copy.
    let small = Bytes::from_static(b"small blob");
    let small_digest = Digest::of(Algorithm::Sha256, &small);
    assert_eq!(store.put_small(&small_digest, small.clone()).await.unwrap(), 10);
    assert_eq!(store.put_small(&small_digest, small.clone()).await.unwrap(), 10);
    assert_eq!(collect(store.read(&small_digest, None).await.unwrap().body.into_stream()).await, small);

    // Empty blob, abort, delete.
    let empty = Digest::of(Algorithm::Sha256, b"");
    let id3 = UploadId::generate();
    let appended = store.upload_append(&id3, 0, body(vec![])).await.unwrap();
    assert_eq!(appended.len, 0);
    assert_eq!(store.upload_commit(&id3, &Vec::from_iter(appended.part), &empty).await.unwrap(), 0);
    assert_eq!(collect(store.read(&empty, None).await.unwrap().body.into_stream()).await, b"");
    let id4 = UploadId::generate();
    let part4 = Vec::from_iter(store.upload_append(&id4, 0, body(vec![vec![9; 10]])).await.unwrap().part);
    let listed = store.uploads().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, id4);
    assert!(listed[0].1 > 1_600_000_000_000, "last write time is in ms since the epoch");
    store.upload_abort(&id4).await.unwrap();
    store.upload_abort(&id4).await.unwrap();
    assert!(store.uploads().await.unwrap().is_empty());
    assert!(matches!(store.upload_read(&id4, &part4).await, Err(Error::NotFound)));
    store.delete(&digest).await.unwrap();
    store.delete(&digest).await.unwrap();
    assert!(store.stat(&digest).await.unwrap().is_none());

    // Listing: every stored blob once, whatever its algorithm.
    let sha512 = Digest::of(Algorithm::Sha512, b"other algorithm");
    store.put_small(&sha512, Bytes::from_static(b"other algorithm")).await.unwrap();
    let mut listed: Vec<Digest> = store.list().map(|d| d.expect("list item")).collect().await;
    listed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut expected = vec![small_digest, empty, sha512];
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(listed, expected);

    if names_parts {
        racing_appends(store).await;
    }
}

/// Two appends at one offset (a retry, or an attacker racing the owner) each keep their own
/// part, and commit assembles exactly the parts it is given.
async fn racing_appends(store: &dyn BlobStore) {
    let good = b"good bytes".to_vec();
    let evil = b"evil bytes".to_vec();
    let id = UploadId::generate();
    let (a, b) = futures_util::join!(
        store.upload_append(&id, 0, body(vec![good.clone()])),
        store.upload_append(&id, 0, body(vec![evil.clone()])),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.part, b.part, "each append gets its own part");
    let digest = Digest::of(Algorithm::Sha256, &good);
    let parts = Vec::from_iter(a.part);
    assert_eq!(collect(store.upload_read(&id, &parts).await.unwrap()).await, good);
    store.upload_commit(&id, &parts, &digest).await.unwrap();
    assert_eq!(collect(store.read(&digest, None).await.unwrap().body.into_stream()).await, good);
    store.upload_abort(&id).await.unwrap();
    store.delete(&digest).await.unwrap();
}
