//! Reference classifier.
