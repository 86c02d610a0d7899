//! Pure, synchronous policy logic: IAM-style policy documents with their evaluator ([`iam`]),
//! and ECR lifecycle rules as filters over candidate images ([`lifecycle`]). No IO, no async.

pub mod iam;
pub mod lifecycle;
