//! SCSI sense and transport-error classification: the `InterpretError` role.
//!
//! When an I/O completes with an error, MPIO asks the DSM what it means: is
//! the path dead (fail over), should the request go again (retry, counted
//! against MPIO's retry budget or not), or is it the device's answer that the
//! class driver must see (pass it up)? [`classify_sense`] answers for CHECK
//! CONDITION sense data in fixed (0x70/0x71) and descriptor (0x72/0x73)
//! format, [`classify_transport`] for errors that carry no sense.
//!
//! The rules are one table, [`RULES`], read top to bottom; the first row that
//! matches decides. Where our behaviour differs from Microsoft's sample DSM
//! the row says why.

/// What to do with a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SenseAction {
    /// The path is dead: fail it and send the request down another one
    /// (`DSM_FATAL_ERROR`).
    FatalFailover,
    /// Retry, counted against MPIO's retry count.
    Retry,
    /// Retry without decrementing the retry count
    /// (`DSM_RETRY_DONT_DECREMENT`): a transient ALUA condition that ends on
    /// its own.
    RetryNoCount,
    /// Complete the request with its error; the class driver decides.
    PassUp,
}

/// The classification of one error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// What to do with the request.
    pub action: SenseAction,
    /// The target's ALUA states may have changed: re-read them (REPORT
    /// TARGET PORT GROUPS) and apply the result.
    pub reread_alua: bool,
}

impl Verdict {
    const fn of(action: SenseAction) -> Self {
        Self { action, reread_alua: false }
    }

    const fn reread(action: SenseAction) -> Self {
        Self { action, reread_alua: true }
    }
}

/// Sense keys.
pub mod key {
    /// NO SENSE.
    pub const NO_SENSE: u8 = 0x0;
    /// RECOVERED ERROR.
    pub const RECOVERED_ERROR: u8 = 0x1;
    /// NOT READY.
    pub const NOT_READY: u8 = 0x2;
    /// MEDIUM ERROR.
    pub const MEDIUM_ERROR: u8 = 0x3;
    /// HARDWARE ERROR.
    pub const HARDWARE_ERROR: u8 = 0x4;
    /// ILLEGAL REQUEST.
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    /// UNIT ATTENTION.
    pub const UNIT_ATTENTION: u8 = 0x6;
    /// DATA PROTECT.
    pub const DATA_PROTECT: u8 = 0x7;
    /// ABORTED COMMAND.
    pub const ABORTED_COMMAND: u8 = 0xB;
}

/// Sense key, additional sense code and qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sense {
    /// Sense key (low 4 bits).
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
    /// `true` for descriptor format.
    pub descriptor: bool,
}

/// Why sense data could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenseError {
    /// Empty buffer.
    Empty,
    /// The response code is not 0x70..=0x73.
    UnknownFormat(u8),
    /// The buffer (or the additional length) ends before ASC/ASCQ.
    Truncated,
}

/// Reads key, ASC and ASCQ from sense data.
///
/// Fixed format: key in byte 2, additional length in byte 7, ASC/ASCQ in
/// bytes 12/13. Descriptor format: key, ASC, ASCQ in bytes 1..4 and the
/// additional length in byte 7. Only bytes within both the buffer and
/// `8 + additional length` count: ASC/ASCQ beyond either is [`SenseError::Truncated`].
///
/// # Errors
/// [`SenseError`] for empty, unknown or truncated sense.
pub fn parse_sense(sense: &[u8]) -> Result<Sense, SenseError> {
    let code = sense.first().ok_or(SenseError::Empty)? & 0x7F;
    let descriptor = match code {
        0x70 | 0x71 => false,
        0x72 | 0x73 => true,
        other => return Err(SenseError::UnknownFormat(other)),
    };
    // The additional length is byte 7 in both formats.
    let additional = usize::from(*sense.get(7).ok_or(SenseError::Truncated)?);
    let valid = sense.get(..(8 + additional).min(sense.len())).ok_or(SenseError::Truncated)?;
    let (key, asc, ascq) = if descriptor {
        match valid {
            [_, k, a, q, ..] => (*k, *a, *q),
            _ => return Err(SenseError::Truncated),
        }
    } else {
        match (valid.get(2), valid.get(12), valid.get(13)) {
            (Some(k), Some(a), Some(q)) => (*k, *a, *q),
            _ => return Err(SenseError::Truncated),
        }
    };
    Ok(Sense { key: key & 0x0F, asc, ascq, descriptor })
}

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A fixed verdict.
    Fixed(Verdict),
    /// "Target port in standby" (04/0B): fail over for reads and writes when
    /// another usable path exists, else retry uncounted and re-read ALUA.
    /// Failing over with no other path would make MPIO loop forever.
    Standby,
}

/// One row: sense key (`None` = any), ASC, ASCQ under a mask (0xFF exact,
/// 0x00 any), and the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Sense key, or any.
    pub key: Option<u8>,
    /// Additional sense code, or any.
    pub asc: Option<u8>,
    /// ASCQ to compare after masking.
    pub ascq: u8,
    /// Mask applied to the ASCQ before comparing.
    pub ascq_mask: u8,
    /// What to do.
    pub rule: Rule,
}

const fn row(key: Option<u8>, asc: Option<u8>, ascq: u8, ascq_mask: u8, rule: Rule) -> Row {
    Row { key, asc, ascq, ascq_mask, rule }
}

const ANY: Option<u8> = None;
const EXACT: u8 = 0xFF;
const ALL: u8 = 0x00;
const FATAL: Rule = Rule::Fixed(Verdict::of(SenseAction::FatalFailover));
const RETRY: Rule = Rule::Fixed(Verdict::of(SenseAction::Retry));
const ALUA_WAIT: Rule = Rule::Fixed(Verdict::reread(SenseAction::RetryNoCount));
const PASS_UP: Rule = Rule::Fixed(Verdict::of(SenseAction::PassUp));

use key::{
    ABORTED_COMMAND, DATA_PROTECT, HARDWARE_ERROR, ILLEGAL_REQUEST, MEDIUM_ERROR, NO_SENSE, NOT_READY,
    UNIT_ATTENTION,
};

/// The classification table; the first matching row wins.
pub const RULES: [Row; 27] = [
    // --- ALUA: transient, uncounted, re-read the states -------------------
    // 2A/06 asymmetric access state changed.
    row(Some(UNIT_ATTENTION), Some(0x2A), 0x06, EXACT, ALUA_WAIT),
    // 2A/07 implicit asymmetric access state transition failed.
    row(Some(UNIT_ATTENTION), Some(0x2A), 0x07, EXACT, ALUA_WAIT),
    // 04/0A asymmetric access state transition in progress.
    row(Some(NOT_READY), Some(0x04), 0x0A, EXACT, ALUA_WAIT),
    // 04/0C target port in unavailable state.
    row(Some(NOT_READY), Some(0x04), 0x0C, EXACT, ALUA_WAIT),
    // 04/0B target port in standby state.
    row(Some(NOT_READY), Some(0x04), 0x0B, EXACT, Rule::Standby),
    // --- the device's news for the class driver: fail, no retry ------------
    // 3F/03 inquiry data changed; 3F/0E reported LUNs data changed.
    row(Some(UNIT_ATTENTION), Some(0x3F), 0x03, EXACT, PASS_UP),
    row(Some(UNIT_ATTENTION), Some(0x3F), 0x0E, EXACT, PASS_UP),
    // 2A/09 capacity data changed; 2A/01 mode parameters changed;
    // 2A/03 reservations preempted; 2A/05 registrations preempted.
    row(Some(UNIT_ATTENTION), Some(0x2A), 0x09, EXACT, PASS_UP),
    row(Some(UNIT_ATTENTION), Some(0x2A), 0x01, EXACT, PASS_UP),
    row(Some(UNIT_ATTENTION), Some(0x2A), 0x03, EXACT, PASS_UP),
    row(Some(UNIT_ATTENTION), Some(0x2A), 0x05, EXACT, PASS_UP),
    // 2F/00 commands cleared by another initiator.
    row(ANY, Some(0x2F), 0x00, EXACT, PASS_UP),
    // Thin provisioning: 27/07 space allocation failed (write protect),
    // 38/07 soft threshold reached, 04/14 space allocation in progress.
    row(ANY, Some(0x27), 0x07, EXACT, PASS_UP),
    row(ANY, Some(0x38), 0x07, EXACT, PASS_UP),
    row(Some(NOT_READY), Some(0x04), 0x14, EXACT, PASS_UP),
    // --- the path is gone ---------------------------------------------------
    // NO SENSE 00/00 with CHECK CONDITION: the target answered nothing.
    row(Some(NO_SENSE), Some(0x00), 0x00, EXACT, FATAL),
    // 25/00 logical unit not supported (through this port).
    row(Some(ILLEGAL_REQUEST), Some(0x25), 0x00, EXACT, FATAL),
    // 67/0A set target port groups command failed.
    row(Some(HARDWARE_ERROR), Some(0x67), 0x0A, EXACT, FATAL),
    // --- transient: retry, counted -----------------------------------------
    // 04/03 manual intervention required: a logical-unit condition, not a
    // path one, so failing over would not help; a counted retry lets MPIO
    // give up after its budget and hand the error up. (Microsoft's sample
    // retries it too.)
    row(Some(NOT_READY), Some(0x04), 0x03, EXACT, RETRY),
    // 3E/02 timeout on logical unit; 4B/06 initiator response timeout.
    row(ANY, Some(0x3E), 0x02, EXACT, RETRY),
    row(ANY, Some(0x4B), 0x06, EXACT, RETRY),
    // Every other unit attention (29/xx power on / reset, ...).
    row(Some(UNIT_ATTENTION), ANY, 0, ALL, RETRY),
    row(Some(ABORTED_COMMAND), ANY, 0, ALL, RETRY),
    // Other NOT READY (becoming ready, ...) ends on its own.
    row(Some(NOT_READY), ANY, 0, ALL, RETRY),
    // --- everything else is the device's answer ---------------------------
    row(Some(MEDIUM_ERROR), ANY, 0, ALL, PASS_UP),
    row(Some(ILLEGAL_REQUEST), ANY, 0, ALL, PASS_UP),
    row(Some(DATA_PROTECT), ANY, 0, ALL, PASS_UP),
];

// RECOVERED ERROR, HARDWARE ERROR other than 67/0A, and any other key match
// no row: `classify` passes them up.

/// What the DSM knows about the request and the LUN when it classifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorContext {
    /// The request was a READ or WRITE.
    pub read_write: bool,
    /// Another path of the LUN is usable besides the one that failed.
    pub other_path_available: bool,
}

impl Row {
    fn matches(self, s: Sense) -> bool {
        self.key.is_none_or(|k| k == s.key)
            && self.asc.is_none_or(|a| a == s.asc)
            && (s.ascq & self.ascq_mask) == (self.ascq & self.ascq_mask)
    }
}

/// Classifies parsed sense.
#[must_use]
pub fn classify(sense: &Sense, ctx: ErrorContext) -> Verdict {
    match RULES.iter().find(|r| r.matches(*sense)).map(|r| r.rule) {
        Some(Rule::Fixed(v)) => v,
        Some(Rule::Standby) if ctx.read_write && ctx.other_path_available => {
            Verdict::reread(SenseAction::FatalFailover)
        }
        Some(Rule::Standby) => Verdict::reread(SenseAction::RetryNoCount),
        None => Verdict::of(SenseAction::PassUp),
    }
}

/// Classifies raw sense data of a CHECK CONDITION.
///
/// Sense that cannot be read (empty, unknown format, truncated before
/// ASC/ASCQ) gets a counted [`SenseAction::Retry`]: the target did report a
/// check condition, a retry may return readable sense, and the retry budget
/// bounds it.
#[must_use]
pub fn classify_sense(sense: &[u8], ctx: ErrorContext) -> Verdict {
    parse_sense(sense).map_or(Verdict::of(SenseAction::Retry), |s| classify(&s, ctx))
}

/// Errors reported without sense data: SRB status and NTSTATUS values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportError {
    /// `SRB_STATUS_SELECTION_TIMEOUT`: the target did not answer selection.
    SelectionTimeout,
    /// `STATUS_DEVICE_NOT_CONNECTED`.
    DeviceNotConnected,
    /// `STATUS_DEVICE_DOES_NOT_EXIST`.
    DeviceDoesNotExist,
    /// `STATUS_NO_SUCH_DEVICE`.
    NoSuchDevice,
    /// `STATUS_DELETE_PENDING`.
    DeletePending,
    /// `SRB_STATUS_INVALID_LUN`.
    InvalidLun,
    /// `SRB_STATUS_INVALID_TARGET_ID`.
    InvalidTargetId,
    /// `SRB_STATUS_INVALID_PATH_ID`.
    InvalidPathId,
    /// `SRB_STATUS_NO_DEVICE`.
    NoDevice,
    /// `SRB_STATUS_NO_HBA`.
    NoHba,
    /// `SRB_STATUS_BUS_RESET`.
    BusReset,
    /// `SRB_STATUS_TIMEOUT` / `SRB_STATUS_COMMAND_TIMEOUT`.
    Timeout,
    /// `SRB_STATUS_ABORTED`.
    Aborted,
    /// `SRB_STATUS_BUSY` or SCSI status BUSY / TASK SET FULL.
    Busy,
    /// `SRB_STATUS_UNEXPECTED_BUS_FREE`, `SRB_STATUS_PARITY_ERROR`,
    /// `SRB_STATUS_PHASE_SEQUENCE_FAILURE`: link-level trouble.
    LinkError,
    /// `STATUS_BUFFER_OVERFLOW` / data overrun.
    DataOverrun,
}

/// Classifies an error without sense.
///
/// Everything that says the device cannot be reached through this path is
/// fatal. A bus reset, timeout, abort, busy or link error is retried
/// (counted): the command was lost, not the path; if it keeps happening the
/// retry budget runs out and path verification decides. (Microsoft's sample
/// fails bus resets without retry and leaves retrying to the class driver,
/// which sends the request down the same path anyway.)
#[must_use]
pub const fn classify_transport(error: TransportError) -> Verdict {
    use TransportError as T;
    match error {
        T::SelectionTimeout
        | T::DeviceNotConnected
        | T::DeviceDoesNotExist
        | T::NoSuchDevice
        | T::DeletePending
        | T::InvalidLun
        | T::InvalidTargetId
        | T::InvalidPathId
        | T::NoDevice
        | T::NoHba => Verdict::of(SenseAction::FatalFailover),
        T::BusReset | T::Timeout | T::Aborted | T::Busy | T::LinkError | T::DataOverrun => {
            Verdict::of(SenseAction::Retry)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SenseAction::{FatalFailover, PassUp, Retry, RetryNoCount};

    fn fixed(key: u8, asc: u8, ascq: u8) -> [u8; 18] {
        let mut s = [0u8; 18];
        s[0] = 0x70;
        s[2] = key;
        s[7] = 10;
        s[12] = asc;
        s[13] = ascq;
        s
    }

    fn descriptor(key: u8, asc: u8, ascq: u8) -> [u8; 8] {
        [0x72, key, asc, ascq, 0, 0, 0, 0]
    }

    const RW_OTHER: ErrorContext = ErrorContext { read_write: true, other_path_available: true };

    fn both(key: u8, asc: u8, ascq: u8, ctx: ErrorContext) -> Verdict {
        let a = classify_sense(&fixed(key, asc, ascq), ctx);
        let b = classify_sense(&descriptor(key, asc, ascq), ctx);
        assert_eq!(a, b, "fixed and descriptor disagree on {key:x}/{asc:02x}/{ascq:02x}");
        a
    }

    #[test]
    fn parses_both_formats() {
        assert_eq!(
            parse_sense(&fixed(6, 0x29, 0x00)),
            Ok(Sense { key: 6, asc: 0x29, ascq: 0, descriptor: false })
        );
        let mut deferred = fixed(0xF2, 0x04, 0x0A);
        deferred[0] = 0xF1; // valid bit + deferred error
        assert_eq!(parse_sense(&deferred), Ok(Sense { key: 2, asc: 4, ascq: 0x0A, descriptor: false }));
        assert_eq!(
            parse_sense(&descriptor(0x2, 0x04, 0x0B)),
            Ok(Sense { key: 2, asc: 4, ascq: 0x0B, descriptor: true })
        );
    }

    #[test]
    fn alua_conditions_retry_uncounted_and_reread() {
        for (k, asc, ascq) in [(6, 0x2A, 0x06), (6, 0x2A, 0x07), (2, 0x04, 0x0A), (2, 0x04, 0x0C)] {
            assert_eq!(both(k, asc, ascq, RW_OTHER), Verdict { action: RetryNoCount, reread_alua: true });
        }
    }

    #[test]
    fn standby_fails_over_only_with_somewhere_to_go() {
        assert_eq!(both(2, 4, 0x0B, RW_OTHER), Verdict { action: FatalFailover, reread_alua: true });
        let alone = ErrorContext { read_write: true, other_path_available: false };
        assert_eq!(both(2, 4, 0x0B, alone), Verdict { action: RetryNoCount, reread_alua: true });
        let not_rw = ErrorContext { read_write: false, other_path_available: true };
        assert_eq!(both(2, 4, 0x0B, not_rw).action, RetryNoCount);
    }

    #[test]
    fn the_table() {
        let c = ErrorContext::default();
        let cases: [((u8, u8, u8), SenseAction); 21] = [
            ((6, 0x29, 0x00), Retry),
            ((6, 0x29, 0x02), Retry),
            ((6, 0x2A, 0x04), Retry),
            ((6, 0x3F, 0x03), PassUp),
            ((6, 0x3F, 0x0E), PassUp),
            ((6, 0x2A, 0x09), PassUp),
            ((6, 0x2A, 0x01), PassUp),
            ((6, 0x2A, 0x03), PassUp),
            ((6, 0x2A, 0x05), PassUp),
            ((7, 0x27, 0x07), PassUp),
            ((6, 0x38, 0x07), PassUp),
            ((0, 0x00, 0x00), FatalFailover),
            ((5, 0x25, 0x00), FatalFailover),
            ((4, 0x67, 0x0A), FatalFailover),
            ((4, 0x44, 0x00), PassUp),
            ((3, 0x11, 0x00), PassUp),
            ((5, 0x24, 0x00), PassUp),
            ((0xB, 0x47, 0x00), Retry),
            ((2, 0x04, 0x03), Retry),
            ((2, 0x04, 0x01), Retry),
            ((1, 0x18, 0x00), PassUp),
        ];
        for ((k, asc, ascq), action) in cases {
            assert_eq!(both(k, asc, ascq, c).action, action, "{k:x}/{asc:02x}/{ascq:02x}");
            assert!(!both(k, asc, ascq, c).reread_alua);
        }
    }

    #[test]
    fn short_and_garbage_sense() {
        assert_eq!(parse_sense(&[]), Err(SenseError::Empty));
        assert_eq!(parse_sense(&[0x00; 18]), Err(SenseError::UnknownFormat(0)));
        assert_eq!(parse_sense(&[0x7F; 18]), Err(SenseError::UnknownFormat(0x7F)));
        let f = fixed(6, 0x2A, 0x06);
        for cut in 0..14 {
            assert!(parse_sense(&f[..cut]).is_err(), "cut {cut}");
        }
        assert!(parse_sense(&f[..14]).is_ok());
        // The additional length says ASC/ASCQ are not valid, whatever follows.
        let mut short = f;
        short[7] = 4;
        assert_eq!(parse_sense(&short), Err(SenseError::Truncated));
        let d = descriptor(2, 4, 0x0A);
        for cut in 0..8 {
            assert!(parse_sense(&d[..cut]).is_err(), "cut {cut}");
        }
        assert_eq!(classify_sense(&[], RW_OTHER), Verdict { action: Retry, reread_alua: false });
        assert_eq!(classify_sense(&[0x70, 0, 6], RW_OTHER).action, Retry);
    }

    #[test]
    fn transport_errors() {
        for e in [
            TransportError::SelectionTimeout,
            TransportError::DeviceNotConnected,
            TransportError::DeviceDoesNotExist,
            TransportError::NoSuchDevice,
            TransportError::DeletePending,
            TransportError::InvalidLun,
            TransportError::InvalidTargetId,
            TransportError::InvalidPathId,
            TransportError::NoDevice,
            TransportError::NoHba,
        ] {
            assert_eq!(classify_transport(e).action, FatalFailover, "{e:?}");
        }
        for e in [
            TransportError::BusReset,
            TransportError::Timeout,
            TransportError::Aborted,
            TransportError::Busy,
            TransportError::LinkError,
            TransportError::DataOverrun,
        ] {
            assert_eq!(classify_transport(e).action, Retry, "{e:?}");
        }
    }
}
