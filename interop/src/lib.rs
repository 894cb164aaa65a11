//! Trace format, replay and TLA+ export (issue 6). Empty until then.
