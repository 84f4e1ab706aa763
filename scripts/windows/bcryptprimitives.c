/* A stand-in for Windows' bcryptprimitives.dll, for Wine 8 only, which lacks it. Rust's std (1.78+)
 * takes its random numbers from ProcessPrng there, so without this every Rust program exits at start
 * under Wine (status c0000135). ProcessPrng fills the buffer from RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. scripts/windows/wine-prefix builds it with mingw-w64 into the
 * Wine prefix; nothing ships it: real Windows has the DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    /* RtlGenRandom takes a 32-bit length. */
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
