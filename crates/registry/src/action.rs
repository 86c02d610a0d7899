//! The IAM actions Amazon ECR defines, which Berth decides whichever door a request came
//! through.

use std::fmt;

macro_rules! actions {
    ($($(#[$doc:meta])* $v:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action { $($(#[$doc])* $v),* }

        impl Action {
            /// The IAM action name, `ecr:<Operation>`.
            #[must_use]
            pub fn iam_name(self) -> &'static str {
                match self { $(Action::$v => concat!("ecr:", stringify!($v))),* }
            }
        }
    };
}

actions! {
    /// Reading manifests.
    BatchGetImage,
    /// Reading blob bytes.
    GetDownloadUrlForLayer,
    /// Checking whether blobs exist.
    BatchCheckLayerAvailability,
    InitiateLayerUpload,
    UploadLayerPart,
    CompleteLayerUpload,
    PutImage,
    BatchDeleteImage,
    ListImages,
    DescribeImages,
    DescribeRepositories,
    CreateRepository,
    DeleteRepository,
    PutImageTagMutability,
    PutImageScanningConfiguration,
    TagResource,
    UntagResource,
    ListTagsForResource,
    DescribeRegistry,
    GetAuthorizationToken,
    SetRepositoryPolicy,
    GetRepositoryPolicy,
    DeleteRepositoryPolicy,
    PutRegistryPolicy,
    GetRegistryPolicy,
    DeleteRegistryPolicy,
    PutLifecyclePolicy,
    GetLifecyclePolicy,
    DeleteLifecyclePolicy,
    StartLifecyclePolicyPreview,
    GetLifecyclePolicyPreview,
    StartImageScan,
    DescribeImageScanFindings,
    PutRegistryScanningConfiguration,
    GetRegistryScanningConfiguration,
    BatchGetRepositoryScanningConfiguration,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iam_name())
    }
}
