/* saemon — SAEMON_API marks the functions libsaemon exports. The library is
 * built with -fvisibility=hidden: a function without it is internal. */
#ifndef SAEMON_API_H
#define SAEMON_API_H

#if defined(__GNUC__) || defined(__clang__)
#define SAEMON_API __attribute__((visibility("default")))
#else
#define SAEMON_API
#endif

#endif
