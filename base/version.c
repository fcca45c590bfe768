#include "saemon/version.h"

const char *saemon_version(void)
{
    return SAEMON_VERSION;
}
