//! Identity-policy texts with the same action sets as AWS's managed policies of the same names.
//! Parse them with [`PolicyKind::Identity`](super::PolicyKind::Identity).

/// `AdministratorAccess`: every action on every resource.
pub const ADMINISTRATOR_ACCESS: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    { "Effect": "Allow", "Action": "*", "Resource": "*" }
  ]
}"#;

/// `AmazonEC2ContainerRegistryReadOnly`: pull images and read repository metadata.
pub const ECR_READ_ONLY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:GetRepositoryPolicy",
        "ecr:DescribeRepositories",
        "ecr:ListImages",
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:GetLifecyclePolicy",
        "ecr:GetLifecyclePolicyPreview",
        "ecr:ListTagsForResource",
        "ecr:DescribeImageScanFindings"
      ],
      "Resource": "*"
    }
  ]
}"#;

/// `AmazonEC2ContainerRegistryPowerUser`: the read-only set plus pushing images.
pub const ECR_POWER_USER: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:GetRepositoryPolicy",
        "ecr:DescribeRepositories",
        "ecr:ListImages",
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:GetLifecyclePolicy",
        "ecr:GetLifecyclePolicyPreview",
        "ecr:ListTagsForResource",
        "ecr:DescribeImageScanFindings",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage"
      ],
      "Resource": "*"
    }
  ]
}"#;

/// `AmazonEC2ContainerRegistryFullAccess`: every ECR action.
pub const ECR_FULL_ACCESS: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    { "Effect": "Allow", "Action": "ecr:*", "Resource": "*" }
  ]
}"#;

/// Every managed policy by its AWS name.
pub const ALL: &[(&str, &str)] = &[
    ("AdministratorAccess", ADMINISTRATOR_ACCESS),
    ("AmazonEC2ContainerRegistryReadOnly", ECR_READ_ONLY),
    ("AmazonEC2ContainerRegistryPowerUser", ECR_POWER_USER),
    ("AmazonEC2ContainerRegistryFullAccess", ECR_FULL_ACCESS),
];

/// The policy text of a managed policy, by its AWS name (exact, case-sensitive).
#[must_use]
pub fn by_name(name: &str) -> Option<&'static str> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}
