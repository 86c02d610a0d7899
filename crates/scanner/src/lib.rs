//! Vulnerability scanning without IO: a layer's bytes in, packages out; packages and advisories
//! in, findings out.
//!
//! - [`inventory`]: what a layer or an image holds (operating system, packages, and where each
//!   was found), serialisable so the core stores it per layer digest and per image.
//! - [`advisory`]: advisories as the matcher reads them (OSV's shape), and [`AdvisorySource`],
//!   the one question the matcher asks of a vulnerability database.
//!
//! The stages, each a module of its own: the layer walk and package detectors, the merge of
//! layers (whiteouts), the ecosystems' version orders, OSV range evaluation, and the matcher.

pub mod advisory;
pub mod inventory;
pub mod layer;
pub mod matcher;
pub mod merge;
pub mod osv;
pub mod severity;
pub mod version;

pub use advisory::{Advisory, AdvisorySource, Affected, Event, Range, RangeKind, SeverityScore};
pub use inventory::{ImageInventory, ImagePackage, LayerInventory, OsRelease, Package, PackageManager, Source};
pub use layer::{LayerError, Limits, scan_layer};
pub use merge::merge;
