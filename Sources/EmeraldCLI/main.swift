import Emerald
