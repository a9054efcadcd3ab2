/* rsdsm user-mode C ABI (rsdsm_control.dll / librsdsm_control.so).
 *
 * SetLoadBalancePolicy for one LUN of the rsdsm DSM, with the semantics of
 * IVdsLunMpio::SetLoadBalancePolicy: all paths with their settings, all or
 * nothing; returns S_OK or the DSM's HRESULT (E_INVALIDARG, E_OUTOFMEMORY,
 * VDS_E_OBJECT_DELETED, VDS_E_OBJECT_STATUS_FAILED,
 * VDS_E_ANOTHER_CALL_IN_PROGRESS, VDS_E_PROVIDER_CACHE_CORRUPT), or a
 * transport HRESULT (E_ACCESSDENIED when not elevated, HRESULT_FROM_WIN32(
 * ERROR_FILE_NOT_FOUND) when the driver is not installed).
 *
 * `lun` is the DSM's LUN handle (`rsdsmctl luns`). On Windows the call goes
 * to \\.\RsdsmControl; elsewhere to the simulated DSM whose socket path is
 * in the RSDSM_SOCKET environment variable.
 */
#ifndef RSDSM_H
#define RSDSM_H

#ifdef _WIN32
#include <windows.h>
#include <vds.h>
#define RSDSM_API __declspec(dllimport) HRESULT __stdcall
#else
#include <stdint.h>
typedef int32_t HRESULT;
typedef int32_t BOOL;
typedef long LONG;
typedef uint32_t ULONG;
typedef uint64_t ULONGLONG;
typedef struct { ULONGLONG ullSourceId; ULONGLONG ullPathId; } VDS_PATH_ID;
typedef struct { VDS_PATH_ID pathId; BOOL bPrimaryPath; ULONG ulWeight; } VDS_PATH_POLICY;
#define RSDSM_API HRESULT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* policy: a VDS_LOADBALANCE_POLICY_ENUM value (1 failover only ... 6 least blocks). */
RSDSM_API RsdsmSetLoadBalancePolicy(ULONGLONG lun, LONG policy, const VDS_PATH_POLICY *paths, LONG count);

/* policy 7 (vendor specific) with a sub-policy: 1 weighted round robin,
 * 2 service time, 3 adaptive latency. */
RSDSM_API RsdsmSetLoadBalancePolicyEx(ULONGLONG lun, LONG policy, ULONG vendor, const VDS_PATH_POLICY *paths,
                                      LONG count);

#ifdef __cplusplus
}
#endif

#endif /* RSDSM_H */
