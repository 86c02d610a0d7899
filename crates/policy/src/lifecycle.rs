//! ECR lifecycle policies: parsing, validation and evaluation over candidate images.
