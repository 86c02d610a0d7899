//! The core on the real embedded backends (filesystem blobs, SQLite metadata) in a tempdir.

mod common;

use std::sync::Arc;

use berth_blobstore::{BlobStore, ByteStream};
use berth_blobstore_fs::FsBlobStore;
use berth_registry::{Caller, Error, Options, Registry};
use berth_types::{Algorithm, Digest, UploadId};
use bytes::Bytes;
use futures_util::{StreamExt, stream};

use common::{authz, key};

fn body(data: &[u8]) -> ByteStream {
    stream::iter(vec![Ok(Bytes::copy_from_slice(data))]).boxed()
}

async fn setup(opts: Options) -> (tempfile::TempDir, Arc<FsBlobStore>, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
    let meta = common::meta(dir.path()).await;
    let reg = Registry::new(blobs.clone(), meta, authz(true), opts);
    (dir, blobs, reg)
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeper_removes_stale_sessions_and_orphaned_upload_bytes() {
    let (_dir, blobs, reg) = setup(Options { upload_expiry_ms: 0, ..Options::default() }).await;
    let who = Caller::Anonymous;
    let repo = key("team/app");
    // A session that received bytes, then was abandoned.
    let st = reg.uploads.start(&who, &repo).await.unwrap();
    reg.uploads.append(&who, &repo, &st.id, Some(0), body(b"partial")).await.unwrap();
    // Bytes of an upload whose session never reached the database (a crash mid-request).
    let stray = UploadId::generate();
    blobs.upload_append(&stray, 0, body(b"debris")).await.unwrap();
    assert_eq!(blobs.uploads().await.unwrap().len(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    assert_eq!(reg.maintenance.sweep_uploads().await.unwrap(), 2);
    assert!(blobs.uploads().await.unwrap().is_empty());
    assert!(matches!(reg.uploads.status(&who, &repo, &st.id).await, Err(Error::UploadNotFound)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_digest_stores_nothing() {
    let (_dir, blobs, reg) = setup(Options::default()).await;
    let who = Caller::Anonymous;
    let repo = key("team/app");
    let claimed = Digest::of(Algorithm::Sha256, b"something else");
    for data in [&b"small"[..], &vec![7u8; 3 << 20][..]] {
        let len = Some(data.len() as u64);
        let err = reg.uploads.monolithic(&who, &repo, &claimed, len, body(data)).await.unwrap_err();
        assert!(matches!(err, Error::DigestInvalid(_)), "{err:?}");
        let st = reg.uploads.start(&who, &repo).await.unwrap();
        reg.uploads.append(&who, &repo, &st.id, None, body(data)).await.unwrap();
        let err = reg.uploads.complete(&who, &repo, &st.id, &claimed, None).await.unwrap_err();
        assert!(matches!(err, Error::DigestInvalid(_)), "{err:?}");
        assert!(matches!(reg.uploads.status(&who, &repo, &st.id).await, Err(Error::UploadNotFound)));
    }
    assert!(matches!(reg.blobs.stat(&who, &repo, &claimed).await, Err(Error::BlobNotFound(_))));
    assert!(blobs.stat(&claimed).await.unwrap().is_none());
    assert!(blobs.uploads().await.unwrap().is_empty(), "no upload bytes are left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_callers_are_refused_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
    let meta = common::meta(dir.path()).await;
    let reg = Registry::new(blobs, meta, authz(false), Options::default());
    let repo = key("team/app");
    assert!(matches!(reg.check_access(&Caller::Anonymous).await, Err(Error::Unauthenticated)));
    assert!(matches!(reg.uploads.start(&Caller::Anonymous, &repo).await, Err(Error::Unauthenticated)));
}

/// Appends are not synced; after a restart (a new epoch) the core trusts a session only if its
/// stored bytes still hash to the saved state.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_restart_upload_bytes_are_checked_before_they_are_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
    let meta = common::meta(dir.path()).await;
    let before = Registry::new(blobs.clone(), meta.clone(), authz(true), Options::default());
    let after = Registry::new(blobs.clone(), meta, authz(true), Options::default());
    let who = Caller::Anonymous;
    let repo = key("team/app");
    let whole = b"first chunk|second chunk";
    let digest = Digest::of(Algorithm::Sha256, whole);

    let mut sessions = Vec::new();
    for _ in 0..3 {
        let st = before.uploads.start(&who, &repo).await.unwrap();
        before.uploads.append(&who, &repo, &st.id, Some(0), body(b"first chunk|")).await.unwrap();
        sessions.push(st.id);
    }
    // One upload's bytes were garbled and another's cut short by the "crash".
    blobs.upload_append(&sessions[1], 0, body(b"FIRST CHUNK|")).await.unwrap();
    blobs.upload_append(&sessions[2], 0, body(b"first")).await.unwrap();

    after.uploads.append(&who, &repo, &sessions[0], Some(12), body(b"second chunk")).await.unwrap();
    after.uploads.complete(&who, &repo, &sessions[0], &digest, None).await.unwrap();
    assert_eq!(after.blobs.stat(&who, &repo, &digest).await.unwrap(), whole.len() as u64);
    for id in &sessions[1..] {
        let err = after.uploads.append(&who, &repo, id, Some(12), body(b"second chunk")).await.unwrap_err();
        assert!(matches!(err, Error::UploadNotFound), "{err:?}");
        assert!(matches!(after.uploads.status(&who, &repo, id).await, Err(Error::UploadNotFound)));
    }
    assert!(blobs.uploads().await.unwrap().is_empty(), "dropped sessions leave no bytes");
}
