//! # rsdsm-control
//!
//! User mode for the rsdsm DSM: a typed API shaped like `IVdsLunMpio`
//! over the driver's IOCTL protocol ([`rsdsm_engine::wire`]), and the
//! `rsdsmctl` command line ([`cli`]).
//!
//! ```
//! # #[cfg(feature = "in-process")] {
//! use std::sync::Arc;
//! use rsdsm::dsm::Dsm as Driver;
//! use rsdsm::identity::{KeyKind, LunKey, PortIds};
//! use rsdsm_control::{Dsm, InProcess};
//! use rsdsm_engine::{AccessState, LoadBalancePolicy, LunSettings, PathId, PathPolicy};
//!
//! // A DSM in this process with one LUN of two paths.
//! let driver = Arc::new(Driver::<4, 8>::new(LoadBalancePolicy::RoundRobin, LunSettings::for_tick_rate(1_000_000)));
//! let key = LunKey::from_parts(KeyKind::Naa, &[&[0x60, 1, 2, 3]]);
//! let (lun, _) = driver.add_path(&key, PathId::new(1, 1), PortIds::default(), AccessState::ActiveOptimized).unwrap();
//! driver.add_path(&key, PathId::new(1, 2), PortIds::default(), AccessState::ActiveOptimized).unwrap();
//!
//! let dsm = Dsm::connect(InProcess::new(driver))?;
//! assert_eq!(dsm.luns()?.len(), 1);
//! dsm.lun(lun).set_load_balance_policy(
//!     LoadBalancePolicy::FailoverOnly,
//!     &[PathPolicy { path_id: PathId::new(1, 1), primary: true, weight: 0 },
//!       PathPolicy { path_id: PathId::new(1, 2), primary: false, weight: 0 }],
//! )?;
//! assert_eq!(dsm.lun(lun).get_load_balance_policy()?.policy, LoadBalancePolicy::FailoverOnly);
//! # }
//! # Ok::<(), rsdsm_control::ControlError>(())
//! ```
#![warn(missing_docs, clippy::pedantic)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod cli;
pub mod ffi;
#[cfg(feature = "in-process")]
mod in_process;
pub mod transport;

use std::fmt;

use rsdsm_engine::wire::{LunEntry, MAX_REQUEST_SIZE, Opcode, PROTOCOL_VERSION, Records, Reply, Request};
pub use rsdsm_engine::wire::{LunId, PathStatisticsEntry, RawPolicy, VersionInfo, WireError};
pub use rsdsm_engine::{
    HResult, LoadBalancePolicy, PathId, PathInfo, PathPolicy, PathStatistics, SupportedPolicies, VendorPolicy,
};

#[cfg(feature = "in-process")]
pub use in_process::{DefaultStore, InProcess};
#[cfg(windows)]
pub use transport::DeviceIoControl;
#[cfg(unix)]
pub use transport::UnixSocket;
pub use transport::{Transport, TransportError};

/// Why a control call failed.
#[derive(Debug)]
pub enum ControlError {
    /// The DSM refused the request with this HRESULT (DESIGN §3), exactly
    /// as `IVdsLunMpio` would return it.
    Dsm(HResult),
    /// The call did not reach the DSM, or failed as a whole.
    Transport(TransportError),
    /// The DSM's reply is not a valid reply to the request.
    BadReply(WireError),
    /// The request cannot be encoded (e.g. more paths than the protocol
    /// carries).
    BadRequest(WireError),
}

impl ControlError {
    /// The HRESULT that stands for this error: the DSM's own, or the
    /// transport's.
    #[must_use]
    pub fn hresult(&self) -> HResult {
        match self {
            Self::Dsm(code) => *code,
            Self::Transport(e) => e.hresult(),
            Self::BadReply(_) => transport::E_UNEXPECTED,
            Self::BadRequest(e) => e.hresult(),
        }
    }

    /// The HRESULT's symbolic name, e.g. `E_INVALIDARG`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        transport::hresult_name(self.hresult())
    }

    /// What went wrong, for an administrator.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::Dsm(code) => code.message().to_owned(),
            Self::Transport(e) => e.to_string(),
            Self::BadReply(e) => format!("the DSM's reply is malformed: {e}"),
            Self::BadRequest(e) => format!("the request cannot be encoded: {e}"),
        }
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X} {}: {}", self.hresult().0, self.name(), self.message())
    }
}

impl std::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            Self::BadReply(e) | Self::BadRequest(e) => Some(e),
            Self::Dsm(_) => None,
        }
    }
}

impl From<TransportError> for ControlError {
    fn from(e: TransportError) -> Self {
        Self::Transport(e)
    }
}

/// One LUN, as [`Dsm::luns`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LunSummary {
    /// The handle to pass to [`Dsm::lun`].
    pub id: LunId,
    /// The policy in force.
    pub policy: LoadBalancePolicy,
    /// Paths present.
    pub paths: u32,
    /// Paths usable for I/O now.
    pub usable_paths: u32,
    /// The first 16 bytes of the LUN's stable designator.
    pub identity: [u8; 16],
}

/// A LUN's policy, as `GetLoadBalancePolicy` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalance {
    /// The policy.
    pub policy: LoadBalancePolicy,
    /// Every path with its settings.
    pub paths: Vec<PathPolicy>,
    /// The configuration generation, for
    /// [`LunHandle::set_load_balance_policy_if`].
    pub generation: u64,
    /// The preferred path, if one is set.
    pub preferred: Option<PathId>,
}

/// The policies a LUN supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported {
    /// Standard policies, as `VDS_LBF_*` flags.
    pub policies: SupportedPolicies,
    /// Bit n: vendor sub-policy n is supported.
    pub vendor_mask: u32,
}

impl Supported {
    /// Every supported policy, in VDS order.
    #[must_use]
    pub fn list(&self) -> Vec<LoadBalancePolicy> {
        LoadBalancePolicy::ALL
            .into_iter()
            .filter(|p| match p {
                LoadBalancePolicy::VendorSpecific(v) => {
                    self.policies.contains(SupportedPolicies::VENDOR_SPECIFIC)
                        && self.vendor_mask & 1u32.checked_shl(v.id()).unwrap_or(0) != 0
                }
                other => self.policies.contains(SupportedPolicies::of(*other)),
            })
            .collect()
    }
}

/// A connection to the DSM, typed like `IVdsLunMpio` and friends.
#[derive(Debug)]
pub struct Dsm<T> {
    transport: T,
    version: VersionInfo,
}

fn policy_of(raw: RawPolicy) -> Result<LoadBalancePolicy, ControlError> {
    raw.policy().map_err(|_| ControlError::BadReply(WireError::BadValue))
}

impl<T: Transport> Dsm<T> {
    /// Connects over `transport` and checks that the DSM speaks this
    /// protocol version.
    ///
    /// # Errors
    /// Any error of [`version`](Self::version);
    /// [`ControlError::BadReply`] with [`WireError::UnsupportedVersion`] if
    /// the DSM speaks another protocol.
    pub fn connect(transport: T) -> Result<Self, ControlError> {
        let version = fetch_version(&transport)?;
        if version.protocol != PROTOCOL_VERSION {
            return Err(ControlError::BadReply(WireError::UnsupportedVersion(version.protocol)));
        }
        Ok(Self { transport, version })
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The version and limits the DSM reported when connecting.
    #[must_use]
    pub fn connected_version(&self) -> VersionInfo {
        self.version
    }

    /// The DSM's protocol and driver version and its limits.
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn version(&self) -> Result<VersionInfo, ControlError> {
        fetch_version(&self.transport)
    }

    /// Every LUN the DSM manages.
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn luns(&self) -> Result<Vec<LunSummary>, ControlError> {
        call(&self.transport, &Request::ListLuns, |reply| match reply {
            Reply::ListLuns(list) => list
                .iter()
                .filter(|e: &LunEntry| !e.removed)
                .map(|e| {
                    Ok(LunSummary {
                        id: e.lun,
                        policy: policy_of(e.policy)?,
                        paths: e.paths,
                        usable_paths: e.usable_paths,
                        identity: e.identity,
                    })
                })
                .collect(),
            other => Err(mismatch(Opcode::ListLuns, &other)),
        })
    }

    /// A LUN by its handle (nothing is sent until a method is called).
    pub fn lun(&self, id: LunId) -> LunHandle<'_, T> {
        LunHandle { transport: &self.transport, id }
    }

    /// The DSM-wide policy new LUNs get.
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn default_policy(&self) -> Result<LoadBalancePolicy, ControlError> {
        call(&self.transport, &Request::GetDefaultPolicy, |reply| match reply {
            Reply::GetDefaultPolicy(raw) => policy_of(raw),
            other => Err(mismatch(Opcode::GetDefaultPolicy, &other)),
        })
    }

    /// Sets the DSM-wide policy new LUNs get (present LUNs keep theirs).
    /// Takes a [`LoadBalancePolicy`] or a raw [`RawPolicy`] (which the DSM
    /// refuses with `E_INVALIDARG` if it is not a policy).
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn set_default_policy(&self, policy: impl Into<RawPolicy>) -> Result<(), ControlError> {
        let request = Request::SetDefaultPolicy { policy: policy.into() };
        call(&self.transport, &request, |reply| match reply {
            Reply::SetDefaultPolicy => Ok(()),
            other => Err(mismatch(Opcode::SetDefaultPolicy, &other)),
        })
    }
}

/// One LUN of a [`Dsm`]: `IVdsLunMpio`.
#[derive(Debug, Clone, Copy)]
pub struct LunHandle<'a, T> {
    transport: &'a T,
    id: LunId,
}

impl<T: Transport> LunHandle<'_, T> {
    /// The LUN's handle.
    #[must_use]
    pub fn id(&self) -> LunId {
        self.id
    }

    /// `SetLoadBalancePolicy`: applies `policy` and the settings of every
    /// path, all or nothing. Returns the LUN's new configuration generation.
    ///
    /// # Errors
    /// [`ControlError::Dsm`] with the DESIGN §3 HRESULT; transport errors.
    pub fn set_load_balance_policy(
        &self,
        policy: impl Into<RawPolicy>,
        paths: &[PathPolicy],
    ) -> Result<u64, ControlError> {
        self.set(policy.into(), paths, None)
    }

    /// [`set_load_balance_policy`](Self::set_load_balance_policy), applied
    /// only if the LUN is still at `generation` (from
    /// [`get_load_balance_policy`](Self::get_load_balance_policy));
    /// otherwise `VDS_E_PROVIDER_CACHE_CORRUPT`.
    ///
    /// # Errors
    /// As [`set_load_balance_policy`](Self::set_load_balance_policy).
    pub fn set_load_balance_policy_if(
        &self,
        policy: impl Into<RawPolicy>,
        paths: &[PathPolicy],
        generation: u64,
    ) -> Result<u64, ControlError> {
        self.set(policy.into(), paths, Some(generation))
    }

    fn set(
        &self,
        policy: RawPolicy,
        paths: &[PathPolicy],
        expected: Option<u64>,
    ) -> Result<u64, ControlError> {
        let request = Request::SetPolicy {
            lun: self.id,
            policy,
            expected_generation: expected,
            paths: Records::Typed(paths),
        };
        call(self.transport, &request, |reply| match reply {
            Reply::SetPolicy { generation } => Ok(generation),
            other => Err(mismatch(Opcode::SetPolicy, &other)),
        })
    }

    /// `GetLoadBalancePolicy`.
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn get_load_balance_policy(&self) -> Result<LoadBalance, ControlError> {
        call(self.transport, &Request::GetPolicy { lun: self.id }, |reply| match reply {
            Reply::GetPolicy { policy, generation, preferred, paths } => Ok(LoadBalance {
                policy: policy_of(policy)?,
                paths: paths.iter().collect(),
                generation,
                preferred,
            }),
            other => Err(mismatch(Opcode::GetPolicy, &other)),
        })
    }

    /// `GetPathInfo`: every path with its state.
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn get_path_info(&self) -> Result<Vec<PathInfo>, ControlError> {
        call(self.transport, &Request::GetPathInfo { lun: self.id }, |reply| match reply {
            Reply::GetPathInfo(list) => Ok(list.iter().collect()),
            other => Err(mismatch(Opcode::GetPathInfo, &other)),
        })
    }

    /// `GetSupportedLbPolicies`.
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn get_supported_policies(&self) -> Result<Supported, ControlError> {
        call(self.transport, &Request::GetSupportedPolicies { lun: self.id }, |reply| match reply {
            Reply::GetSupportedPolicies { policies, vendor_mask } => Ok(Supported { policies, vendor_mask }),
            other => Err(mismatch(Opcode::GetSupportedPolicies, &other)),
        })
    }

    /// Per-path statistics.
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn statistics(&self) -> Result<Vec<PathStatisticsEntry>, ControlError> {
        call(self.transport, &Request::GetStatistics { lun: self.id }, |reply| match reply {
            Reply::GetStatistics(list) => Ok(list.iter().collect()),
            other => Err(mismatch(Opcode::GetStatistics, &other)),
        })
    }
}

fn fetch_version<T: Transport>(transport: &T) -> Result<VersionInfo, ControlError> {
    call(transport, &Request::GetVersion, |reply| match reply {
        Reply::GetVersion(info) => Ok(info),
        other => Err(mismatch(Opcode::GetVersion, &other)),
    })
}

/// A success reply of another kind than asked for (cannot come out of
/// `Reply::decode`, which decodes by the expected opcode).
fn mismatch(expected: Opcode, reply: &Reply<'_>) -> ControlError {
    ControlError::BadReply(WireError::OpcodeMismatch { expected, found: reply.opcode().raw() })
}

/// Encodes `request`, carries it, decodes the reply and hands a success to
/// `f`.
fn call<T: Transport, R>(
    transport: &T,
    request: &Request<'_>,
    f: impl FnOnce(Reply<'_>) -> Result<R, ControlError>,
) -> Result<R, ControlError> {
    let opcode = request.opcode();
    let mut input = vec![0u8; request.encoded_len().min(MAX_REQUEST_SIZE)];
    let n = request.encode(&mut input).map_err(ControlError::BadRequest)?;
    input.truncate(n);
    let output = transport.call(opcode.ioctl(), &input, opcode.max_reply_size())?;
    match Reply::decode(opcode, &output).map_err(ControlError::BadReply)? {
        Ok(reply) => f(reply),
        Err(code) => Err(ControlError::Dsm(code)),
    }
}
