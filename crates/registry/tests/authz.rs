//! Authorization through the core on the real embedded backends: account principals in
//! resource policies, and callers whose user was deleted.

mod common;

use std::sync::Arc;

use berth_blobstore_fs::FsBlobStore;
use berth_meta::RepoMeta as _;
use berth_meta_sqlite::SqliteMeta;
use berth_registry::identity::{ADMIN_USER, user_arn};
use berth_registry::{
    Action, Caller, Error, Options, Origin, Principal, Registry, RepositoryListing, RepositorySettings,
};
use berth_types::{PageRequest, RepositoryKey, now_ms};

use common::{acct, key};

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";

async fn setup() -> (tempfile::TempDir, Registry) {
    let (dir, reg, _) = setup_with_meta().await;
    (dir, reg)
}

async fn setup_with_meta() -> (tempfile::TempDir, Registry, Arc<SqliteMeta>) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
    let meta = common::meta(dir.path()).await;
    let authz = common::authz(false);
    let reg = Registry::new(blobs, meta.clone(), authz, Options::default());
    reg.identity.bootstrap(Some(("AKIAADMIN", "secret"))).await.unwrap();
    reg.identity.create_account(Some(OTHER), "other").await.unwrap();
    (dir, reg, meta)
}

/// A SigV4 caller (no token time).
fn signed(account: &str, user: &str) -> Caller {
    Caller::Principal(Principal::from_arn(&user_arn(account, user), Origin::default()).unwrap())
}

/// A registry-token caller whose token was made at `issued_at_ms`.
fn token(account: &str, user: &str, issued_at_ms: i64) -> Caller {
    let mut p = Principal::from_arn(&user_arn(account, user), Origin::default()).unwrap();
    p.issued_at_ms = Some(issued_at_ms);
    Caller::Principal(p)
}

fn policy(principal: &str) -> String {
    format!(r#"{{"Statement":{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"ecr:*"}}}}"#)
}

/// Every repository action, with whether `who` may do it on `repo`.
async fn allowed(reg: &Registry, who: &Caller, repo: &RepositoryKey) -> Vec<(Action, bool)> {
    let actions = [
        Action::BatchGetImage,
        Action::GetDownloadUrlForLayer,
        Action::PutImage,
        Action::BatchDeleteImage,
        Action::DeleteRepository,
        Action::SetRepositoryPolicy,
        Action::DeleteRepositoryPolicy,
        Action::TagResource,
    ];
    let mut out = Vec::new();
    for a in actions {
        out.push((a, reg.may(who, repo, a).await.is_ok()));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_principal_delegates_and_a_user_principal_grants() {
    let (_dir, reg) = setup().await;
    let admin = signed(ACCT, ADMIN_USER);
    let repo = key("team/app");
    reg.repositories.create(&admin, &repo, &RepositorySettings::default(), &[]).await.unwrap();
    reg.identity.create_user(ACCT, "nobody").await.unwrap();
    reg.identity.create_user(ACCT, "puller").await.unwrap();
    let pull = r#"{"Statement":{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"}}"#;
    reg.identity.attach_user_policy(ACCT, "puller", "pull", Some(pull)).await.unwrap();
    reg.identity.create_user(OTHER, "alice").await.unwrap();
    let nobody = signed(ACCT, "nobody");

    for principal in [format!("arn:aws:iam::{ACCT}:root"), ACCT.to_owned()] {
        reg.policies.set_repository(&admin, &repo, &policy(&principal)).await.unwrap();
        let got = allowed(&reg, &nobody, &repo).await;
        assert!(got.iter().all(|(_, ok)| !ok), "{principal}: a user without identity policy got {got:?}");
        // With an identity policy, the account's user gets what that policy allows.
        let got = allowed(&reg, &signed(ACCT, "puller"), &repo).await;
        let ok: Vec<Action> = got.iter().filter(|(_, ok)| *ok).map(|(a, _)| *a).collect();
        assert_eq!(ok, [Action::BatchGetImage], "{principal}");
    }
    // Naming the user itself grants on its own.
    reg.policies.set_repository(&admin, &repo, &policy(&user_arn(ACCT, "nobody"))).await.unwrap();
    assert!(allowed(&reg, &nobody, &repo).await.iter().all(|(_, ok)| *ok));
    assert!(
        allowed(&reg, &signed(ACCT, "puller"), &repo).await.iter().all(|(a, ok)| *ok == (*a == Action::BatchGetImage))
    );
    // Another account, named, with no identity policy: nothing.
    reg.policies.set_repository(&admin, &repo, &policy(OTHER)).await.unwrap();
    assert!(allowed(&reg, &signed(OTHER, "alice"), &repo).await.iter().all(|(_, ok)| !ok));
    // The registry policy follows the same rule.
    reg.policies.delete_repository(&admin, &repo).await.unwrap();
    reg.policies.put_registry(&admin, &policy(ACCT)).await.unwrap();
    assert!(allowed(&reg, &nobody, &repo).await.iter().all(|(_, ok)| !ok));
    assert!(matches!(reg.policies.put_registry(&nobody, &policy("*")).await, Err(Error::AccessDenied { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_users_token_is_refused_at_once() {
    let (_dir, reg) = setup().await;
    let admin = signed(ACCT, ADMIN_USER);
    let repo = key("team/app");
    reg.repositories.create(&admin, &repo, &RepositorySettings::default(), &[]).await.unwrap();
    reg.identity.create_user(ACCT, "doomed").await.unwrap();
    reg.policies.set_repository(&admin, &repo, &policy(&user_arn(ACCT, "doomed"))).await.unwrap();
    let issued = now_ms();
    let tok = token(ACCT, "doomed", issued);
    assert!(reg.check_access(&tok).await.is_ok());
    assert!(reg.may(&tok, &repo, Action::PutImage).await.is_ok());

    reg.identity.delete_user(ACCT, "doomed").await.unwrap();
    for who in [&tok, &signed(ACCT, "doomed")] {
        assert!(matches!(reg.check_access(who).await, Err(Error::Unauthenticated)));
        for a in [Action::PutImage, Action::BatchGetImage, Action::GetDownloadUrlForLayer] {
            let got = reg.may(who, &repo, a).await;
            assert!(matches!(got, Err(Error::Unauthenticated)), "{a}: {got:?}");
        }
    }

    // Made again under the same name: the old token still speaks for nobody, a new one works.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // tokens carry whole seconds
    reg.identity.create_user(ACCT, "doomed").await.unwrap();
    assert!(matches!(reg.may(&tok, &repo, Action::PutImage).await, Err(Error::Unauthenticated)));
    let fresh = token(ACCT, "doomed", now_ms());
    assert!(reg.may(&fresh, &repo, Action::PutImage).await.is_ok());
    // A caller of a user that never existed is refused the same way.
    assert!(matches!(reg.check_access(&signed(ACCT, "ghost")).await, Err(Error::Unauthenticated)));
}

/// Every page of the catalog (`describe`: of DescribeRepositories) for `who`, `n` at a time:
/// the names and the markers.
async fn pages(reg: &Registry, who: &Caller, n: usize, describe: bool) -> (Vec<String>, Vec<String>) {
    let (mut names, mut markers, mut after) = (Vec::new(), Vec::new(), None);
    for _ in 0..1000 {
        let page = PageRequest { limit: Some(n), after: after.take() };
        let (items, next) = if describe {
            let p = reg.repositories.describe(who, &acct(), RepositoryListing::Page(&page)).await.unwrap();
            (p.items.into_iter().map(|r| r.key.name.to_string()).collect::<Vec<_>>(), p.next)
        } else {
            let p = reg.repositories.catalog(who, &acct(), &page).await.unwrap();
            (p.items.into_iter().map(|r| r.to_string()).collect(), p.next)
        };
        assert!(items.len() <= n);
        names.extend(items);
        match next {
            Some(m) => {
                markers.push(m.clone());
                after = Some(m);
            }
            None => return (names, markers),
        }
    }
    panic!("paging did not end within 1000 pages");
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_never_name_hidden_repositories() {
    let (_dir, reg) = setup().await;
    let admin = signed(ACCT, ADMIN_USER);
    let mut visible = Vec::new();
    for i in 0..40 {
        let name = if i % 7 == 3 { format!("r{i:02}-open") } else { format!("r{i:02}-hidden") };
        if name.ends_with("-open") {
            visible.push(name.clone());
        }
        let repo = key(&name);
        reg.repositories.create(&admin, &repo, &RepositorySettings::default(), &[]).await.unwrap();
    }
    reg.identity.create_user(ACCT, "peeker").await.unwrap();
    let see = r#"{"Statement":{"Effect":"Allow","Action":["ecr:DescribeRepositories","ecr:BatchGetImage"],"Resource":"arn:aws:ecr:*:*:repository/*-open"}}"#;
    reg.identity.attach_user_policy(ACCT, "peeker", "see", Some(see)).await.unwrap();
    let peeker = signed(ACCT, "peeker");
    for describe in [false, true] {
        for n in [1, 2, 5, 100] {
            let (names, markers) = pages(&reg, &peeker, n, describe).await;
            assert_eq!(names, visible, "n={n} describe={describe}");
            assert!(markers.iter().all(|m| !m.contains("hidden") && m.starts_with('~')), "{markers:?}");
        }
        let (names, _) = pages(&reg, &admin, 3, describe).await;
        assert_eq!(names.len(), 40);
    }
    // A client-made catalog `last` is a name; a made-up nextToken is refused.
    let page = PageRequest { limit: Some(2), after: Some("r03-open".to_owned()) };
    let got: Vec<String> = reg
        .repositories
        .catalog(&peeker, &acct(), &page)
        .await
        .unwrap()
        .items
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got, ["r10-open", "r17-open"]);
    let err = reg.repositories.describe(&peeker, &acct(), RepositoryListing::Page(&page)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidParameter(_)), "{err:?}");
    // A catalog marker is not a DescribeRepositories one.
    let marker = reg
        .repositories
        .catalog(&peeker, &acct(), &PageRequest { limit: Some(1), after: None })
        .await
        .unwrap()
        .next
        .unwrap();
    let page = PageRequest { limit: Some(1), after: Some(marker) };
    assert!(matches!(
        reg.repositories.describe(&peeker, &acct(), RepositoryListing::Page(&page)).await,
        Err(Error::InvalidParameter(_))
    ));
}

/// More hidden rows than one request examines: the page comes back short (even empty) but with
/// a marker, and following the markers reaches the visible names behind them.
#[tokio::test(flavor = "multi_thread")]
async fn a_page_cut_short_by_the_scan_budget_still_has_a_marker() {
    let (_dir, reg, meta) = setup_with_meta().await;
    let names: Vec<String> =
        (0..5_200).map(|i| format!("h{i:05}")).chain(["z-open-1".to_owned(), "z-open-2".to_owned()]).collect();
    for n in &names {
        meta.create_repository_with(&key(n), &RepositorySettings::default()).await.unwrap();
    }
    reg.identity.create_user(ACCT, "peeker").await.unwrap();
    let see = r#"{"Statement":{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"arn:aws:ecr:*:*:repository/z-open-*"}}"#;
    reg.identity.attach_user_policy(ACCT, "peeker", "see", Some(see)).await.unwrap();
    let peeker = signed(ACCT, "peeker");
    let first =
        reg.repositories.catalog(&peeker, &acct(), &PageRequest { limit: Some(10), after: None }).await.unwrap();
    assert!(first.items.is_empty() && first.next.is_some(), "{:?}", first.items);
    let (got, markers) = pages(&reg, &peeker, 10, false).await;
    assert_eq!(got, ["z-open-1", "z-open-2"]);
    assert_eq!(markers.len(), 1, "5,202 rows at most 5,000 a request: two requests");
}
