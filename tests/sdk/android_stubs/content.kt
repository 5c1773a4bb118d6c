package android.content.pm

class PackageInfo {
    @JvmField
    var versionName: String? = null
}

open class PackageManager {
    fun getPackageInfo(packageName: String, flags: Int): PackageInfo = PackageInfo()
}
