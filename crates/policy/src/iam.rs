//! IAM-style policy documents and their evaluation.
