// Header-only target: SwiftPM needs one source file per C target.
#include "CEmeraldSIMD.h"
