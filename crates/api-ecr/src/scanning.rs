//! ECR's scanning operations: the wire shapes of what the core's scanning service answers.

use std::collections::BTreeMap;

use berth_ecr_model::EpochSeconds;
use berth_ecr_model::ecr;
use berth_registry::Caller;
use berth_registry::scanning::{
    FindingsPage, Frequency, ImageFacts, RepositoryScanning, ScanRule, ScanningConfiguration, StoredFinding,
};
use berth_registry::scanning::{ScanKind, ScanStatus, ScanSummary};
use berth_types::RepositoryKey;

use super::{EcrApi, EcrError, image_id_strict, json, key, page_request, repo_name};

fn validation(message: impl Into<String>) -> EcrError {
    EcrError::new("ValidationException", message)
}

pub(crate) fn status(s: &ScanSummary) -> ecr::ImageScanStatus {
    ecr::ImageScanStatus { description: s.description.clone(), status: Some(ecr::ScanStatus::from(s.status.as_str())) }
}

fn counts(s: &ScanSummary) -> Option<BTreeMap<ecr::FindingSeverity, i32>> {
    let text = s.severity_counts.as_deref()?;
    let parsed: BTreeMap<String, i64> = serde_json::from_str(text).ok()?;
    Some(
        parsed
            .into_iter()
            .map(|(k, v)| (ecr::FindingSeverity::from(k.as_str()), i32::try_from(v).unwrap_or(i32::MAX)))
            .collect(),
    )
}

/// `imageScanFindingsSummary` of `DescribeImages`: once a scan has finished.
pub(crate) fn summary(s: &ScanSummary) -> Option<ecr::ImageScanFindingsSummary> {
    s.completed_at.map(|done| ecr::ImageScanFindingsSummary {
        finding_severity_counts: counts(s),
        image_scan_completed_at: Some(EpochSeconds::from_unix_millis(done)),
        vulnerability_source_updated_at: s.source_updated_at.map(EpochSeconds::from_unix_millis),
    })
}

pub(crate) async fn start_image_scan(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::StartImageScanRequest,
) -> Result<Vec<u8>, EcrError> {
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let id = image_id_strict(&i.image_id)?;
    let view = api.registry.scanning.start(caller, &repo, &id).await?;
    json(&ecr::StartImageScanResponse {
        image_id: Some(ecr::ImageIdentifier {
            image_digest: Some(view.digest.to_string()),
            image_tag: i.image_id.image_tag,
        }),
        image_scan_status: Some(status(&view.summary)),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    })
}

pub(crate) async fn describe_image_scan_findings(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::DescribeImageScanFindingsRequest,
) -> Result<Vec<u8>, EcrError> {
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let id = image_id_strict(&i.image_id)?;
    let page = page_request(i.max_results, i.next_token.clone());
    let p = api.registry.scanning.findings(caller, &repo, &id, &page).await?;
    let s = &p.view.summary;
    let finished = s.completed_at.is_some() && !matches!(s.status, ScanStatus::InProgress | ScanStatus::Pending);
    let findings = finished.then(|| {
        let (basic, enhanced) = match p.kind {
            ScanKind::Basic => (Some(p.findings.iter().map(basic_finding).collect()), None),
            ScanKind::Enhanced => {
                (None, Some(p.findings.iter().map(|f| enhanced_finding(api, &repo, &p, f)).collect()))
            }
        };
        ecr::ImageScanFindings {
            enhanced_findings: enhanced,
            finding_severity_counts: counts(s),
            findings: basic,
            image_scan_completed_at: s.completed_at.map(EpochSeconds::from_unix_millis),
            vulnerability_source_updated_at: s.source_updated_at.map(EpochSeconds::from_unix_millis),
        }
    });
    json(&ecr::DescribeImageScanFindingsResponse {
        image_id: Some(ecr::ImageIdentifier {
            image_digest: Some(p.view.digest.to_string()),
            image_tag: i.image_id.image_tag,
        }),
        image_scan_findings: findings,
        image_scan_status: Some(status(s)),
        next_token: if finished { p.next.clone() } else { None },
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    })
}

fn attribute(key: &str, value: impl Into<String>) -> ecr::Attribute {
    ecr::Attribute { key: key.to_owned(), value: Some(value.into()) }
}

fn cvss_of<'a>(f: &'a StoredFinding, major: &str) -> Option<&'a berth_registry::scanning::Cvss> {
    f.finding.cvss.iter().find(|c| c.version.starts_with(major))
}

fn source_url(f: &StoredFinding) -> String {
    format!("https://osv.dev/vulnerability/{}", f.finding.advisory_id)
}

/// A basic finding: name, description, link, severity and ECR's attributes.
fn basic_finding(f: &StoredFinding) -> ecr::ImageScanFinding {
    let p = &f.finding.package;
    let mut attributes =
        vec![attribute("package_name", p.name.clone()), attribute("package_version", p.version.clone())];
    if let Some(c) = cvss_of(f, "2") {
        attributes.push(attribute("CVSS2_VECTOR", c.vector.clone()));
        attributes.push(attribute("CVSS2_SCORE", format!("{}", c.base_score)));
    }
    if let Some(c) = cvss_of(f, "3") {
        attributes.push(attribute("CVSS3_VECTOR", c.vector.clone()));
        attributes.push(attribute("CVSS3_SCORE", format!("{}", c.base_score)));
    }
    if let Some(fixed) = &f.finding.fixed_in {
        attributes.push(attribute("fixed_in_version", fixed.clone()));
    }
    if let Some(image) = &f.image_digest {
        attributes.push(attribute("image_digest", image.clone()));
    }
    ecr::ImageScanFinding {
        attributes: Some(attributes),
        description: f.finding.description.clone().or_else(|| f.finding.summary.clone()),
        name: Some(f.finding.vulnerability_id.clone()),
        severity: Some(ecr::FindingSeverity::from(f.finding.severity.as_str())),
        uri: Some(f.finding.references.first().cloned().unwrap_or_else(|| source_url(f))),
    }
}

fn seconds_of(rfc3339: Option<&str>) -> Option<EpochSeconds> {
    rfc3339.and_then(|s| s.parse::<jiff::Timestamp>().ok()).map(|t| EpochSeconds::from_unix_millis(t.as_millisecond()))
}

/// An enhanced finding in ECR's (Inspector's) shape.
fn enhanced_finding(
    api: &EcrApi,
    repo: &RepositoryKey,
    page: &FindingsPage,
    f: &StoredFinding,
) -> ecr::EnhancedImageScanFinding {
    use sha2::Digest as _;
    let p = &f.finding.package;
    let image_digest = f.image_digest.clone().unwrap_or_else(|| page.view.digest.to_string());
    let id_material =
        format!("{}\n{image_digest}\n{}\n{}\n{}\n{}", repo, f.finding.vulnerability_id, p.name, p.version, p.path);
    let id = hex::encode(&sha2::Sha256::digest(id_material.as_bytes())[..16]);
    let finding_arn = format!("arn:aws:inspector2:{}:{}:finding/{id}", api.region, repo.registry);
    let cvss: Vec<ecr::CvssScore> = f
        .finding
        .cvss
        .iter()
        .map(|c| ecr::CvssScore {
            base_score: Some(c.base_score),
            scoring_vector: Some(c.vector.clone()),
            source: Some(f.finding.ecosystem.clone()),
            version: Some(c.version.clone()),
        })
        .collect();
    let best = cvss_of(f, "3").or_else(|| cvss_of(f, "4")).or_else(|| cvss_of(f, "2"));
    let (epoch, version, release) = match (p.epoch, &p.release) {
        (e, Some(r)) => {
            let v = p.version.rsplit_once('-').map_or(p.version.as_str(), |(v, _)| v);
            let v = v.split_once(':').map_or(v, |(_, v)| v);
            (e.map(|e| i32::try_from(e).unwrap_or(i32::MAX)), v.to_owned(), Some(r.clone()))
        }
        (e, None) => (e.map(|e| i32::try_from(e).unwrap_or(i32::MAX)), p.version.clone(), None),
    };
    let package = ecr::VulnerablePackage {
        arch: p.arch.clone(),
        epoch,
        file_path: Some(p.path.clone()),
        fixed_in_version: Some(f.finding.fixed_in.clone().unwrap_or_else(|| "NotAvailable".into())),
        name: Some(p.name.clone()),
        package_manager: Some(p.manager.as_str().to_owned()),
        release,
        source_layer_hash: f.layer_digest.clone(),
        version: Some(version),
    };
    let facts = page.image.clone().unwrap_or_default();
    let ImageFacts { architecture, os, author } = facts;
    let platform = match (&os, &architecture) {
        (Some(o), Some(a)) => Some(format!("{o}/{a}")),
        _ => None,
    };
    let image = ecr::AwsEcrContainerImageDetails {
        architecture,
        author,
        image_hash: Some(image_digest.clone()),
        image_tags: None,
        in_use_count: None,
        last_in_use_at: None,
        platform,
        pushed_at: None,
        registry: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    };
    let resource_id = format!("{}/{image_digest}", api.registry.repository_arn(repo));
    let recommendation = match &f.finding.fixed_in {
        Some(v) => format!("Upgrade {} to version {v} or later.", p.name),
        None => "None Provided".to_owned(),
    };
    ecr::EnhancedImageScanFinding {
        aws_account_id: Some(repo.registry.to_string()),
        description: f.finding.description.clone().or_else(|| f.finding.summary.clone()),
        exploit_available: None,
        finding_arn: Some(finding_arn),
        first_observed_at: Some(EpochSeconds::from_unix_millis(f.first_observed_at)),
        fix_available: Some(if f.finding.fixed_in.is_some() { "YES" } else { "NO" }.to_owned()),
        last_observed_at: Some(EpochSeconds::from_unix_millis(f.last_observed_at)),
        package_vulnerability_details: Some(ecr::PackageVulnerabilityDetails {
            cvss: Some(cvss),
            reference_urls: Some(f.finding.references.clone()),
            related_vulnerabilities: Some(f.finding.related.clone()),
            source: Some(f.finding.ecosystem.clone()),
            source_url: Some(source_url(f)),
            vendor_created_at: seconds_of(f.finding.published.as_deref()),
            vendor_severity: f.finding.vendor_severity.clone().or_else(|| Some(f.finding.severity.as_str().to_owned())),
            vendor_updated_at: seconds_of(Some(&f.finding.modified)),
            vulnerability_id: Some(f.finding.vulnerability_id.clone()),
            vulnerable_packages: Some(vec![package]),
        }),
        remediation: Some(ecr::Remediation {
            recommendation: Some(ecr::Recommendation { text: Some(recommendation), url: None }),
        }),
        resources: Some(vec![ecr::Resource {
            details: Some(ecr::ResourceDetails { aws_ecr_container_image: Some(image) }),
            id: Some(resource_id),
            tags: None,
            r#type: Some("AWS_ECR_CONTAINER_IMAGE".into()),
        }]),
        score: best.map(|c| c.base_score),
        score_details: best.map(|c| ecr::ScoreDetails {
            cvss: Some(ecr::CvssScoreDetails {
                adjustments: Some(Vec::new()),
                score: Some(c.base_score),
                score_source: Some(f.finding.ecosystem.clone()),
                scoring_vector: Some(c.vector.clone()),
                version: Some(c.version.clone()),
            }),
        }),
        // Inspector's word for a finding without a rating.
        severity: Some(match f.finding.severity.as_str() {
            "UNDEFINED" => "UNTRIAGED".to_owned(),
            s => s.to_owned(),
        }),
        status: Some(f.status.as_str().to_owned()),
        title: Some(format!("{} - {}", f.finding.vulnerability_id, p.name)),
        r#type: Some("PACKAGE_VULNERABILITY".into()),
        updated_at: Some(EpochSeconds::from_unix_millis(f.updated_at)),
    }
}

fn wire_config(c: &ScanningConfiguration) -> ecr::RegistryScanningConfiguration {
    ecr::RegistryScanningConfiguration {
        rules: Some(
            c.rules
                .iter()
                .map(|r| ecr::RegistryScanningRule {
                    repository_filters: r
                        .filters
                        .iter()
                        .map(|f| ecr::ScanningRepositoryFilter {
                            filter: f.clone(),
                            filter_type: ecr::ScanningRepositoryFilterType::Wildcard,
                        })
                        .collect(),
                    scan_frequency: ecr::ScanFrequency::from(r.frequency.as_str()),
                })
                .collect(),
        ),
        scan_type: Some(ecr::ScanType::from(c.kind.as_str())),
    }
}

pub(crate) async fn put_registry_scanning_configuration(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::PutRegistryScanningConfigurationRequest,
) -> Result<Vec<u8>, EcrError> {
    let kind = match &i.scan_type {
        None => ScanKind::Basic,
        Some(t) => ScanKind::parse(t.as_str())
            .ok_or_else(|| validation(format!("scanType '{}' must be BASIC or ENHANCED", t.as_str())))?,
    };
    let mut rules = Vec::new();
    for r in i.rules.unwrap_or_default() {
        let frequency = match r.scan_frequency.as_str() {
            "SCAN_ON_PUSH" => Frequency::ScanOnPush,
            "CONTINUOUS_SCAN" => Frequency::ContinuousScan,
            "MANUAL" => Frequency::Manual,
            other => return Err(validation(format!("scanFrequency '{other}' is not one ECR knows"))),
        };
        let mut filters = Vec::new();
        for f in r.repository_filters {
            if f.filter_type.as_str() != "WILDCARD" {
                return Err(validation(format!("filterType '{}' must be WILDCARD", f.filter_type.as_str())));
            }
            filters.push(f.filter);
        }
        rules.push(ScanRule { frequency, filters });
    }
    let config = api.registry.scanning.put_configuration(caller, ScanningConfiguration { kind, rules }).await?;
    json(&ecr::PutRegistryScanningConfigurationResponse { registry_scanning_configuration: Some(wire_config(&config)) })
}

pub(crate) async fn get_registry_scanning_configuration(
    api: &EcrApi,
    caller: &Caller,
    _i: ecr::GetRegistryScanningConfigurationRequest,
) -> Result<Vec<u8>, EcrError> {
    let (registry, config) = api.registry.scanning.get_configuration(caller).await?;
    json(&ecr::GetRegistryScanningConfigurationResponse {
        registry_id: Some(registry.to_string()),
        scanning_configuration: Some(wire_config(&config)),
    })
}

pub(crate) async fn batch_get_repository_scanning_configuration(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::BatchGetRepositoryScanningConfigurationRequest,
) -> Result<Vec<u8>, EcrError> {
    let registry = api.registry.account_of(caller).clone();
    let names = i.repository_names.iter().map(|n| repo_name(n)).collect::<Result<Vec<_>, _>>()?;
    let found = api.registry.scanning.repository_configurations(caller, &registry, &names).await?;
    let (mut configs, mut failures) = (Vec::new(), Vec::new());
    for (name, scanning) in found {
        match scanning {
            Some(RepositoryScanning { frequency, scan_on_push, applied_filters, .. }) => {
                let key = RepositoryKey::new(registry.clone(), name.clone());
                configs.push(ecr::RepositoryScanningConfiguration {
                    applied_scan_filters: Some(
                        applied_filters
                            .into_iter()
                            .map(|f| ecr::ScanningRepositoryFilter {
                                filter: f,
                                filter_type: ecr::ScanningRepositoryFilterType::Wildcard,
                            })
                            .collect(),
                    ),
                    repository_arn: Some(api.registry.repository_arn(&key)),
                    repository_name: Some(name.to_string()),
                    scan_frequency: Some(ecr::ScanFrequency::from(frequency.as_str())),
                    scan_on_push: Some(scan_on_push),
                });
            }
            None => failures.push(ecr::RepositoryScanningConfigurationFailure {
                failure_code: Some(ecr::ScanningConfigurationFailureCode::RepositoryNotFound),
                failure_reason: Some("REPOSITORY_NOT_FOUND".into()),
                repository_name: Some(name.to_string()),
            }),
        }
    }
    json(&ecr::BatchGetRepositoryScanningConfigurationResponse {
        failures: Some(failures),
        scanning_configurations: Some(configs),
    })
}
