/* Calls the C ABI the way a C, C# or PowerShell caller would. */
#include <stdio.h>
#include <stdlib.h>
#include "rsdsm.h"

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    ULONGLONG lun = strtoull(argv[1], NULL, 10);
    VDS_PATH_POLICY paths[4] = {
        {{1, 1}, 0, 0}, {{1, 2}, 0, 0}, {{1, 3}, 1, 0}, {{1, 4}, 0, 0},
    };
    /* failover only, 1:3 primary */
    HRESULT ok = RsdsmSetLoadBalancePolicy(lun, 1, paths, 4);
    /* an unknown path id */
    paths[0].pathId.ullPathId = 99;
    HRESULT bad = RsdsmSetLoadBalancePolicy(lun, 2, paths, 4);
    /* a null pointer */
    HRESULT null = RsdsmSetLoadBalancePolicy(lun, 2, NULL, 4);
    printf("%08x %08x %08x\n", (unsigned)ok, (unsigned)bad, (unsigned)null);
    return 0;
}
