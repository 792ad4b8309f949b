@_exported import EmeraldCore
