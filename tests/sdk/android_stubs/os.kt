package android.os

class Bundle

object Build {
    object VERSION {
        @JvmField
        val RELEASE: String = "15"
    }
}
