package android.app

import android.content.pm.PackageManager
import android.os.Bundle
import java.io.File

open class Activity

// android.app.Application (a ContextWrapper): the members the glue reads.
open class Application {
    val packageManager: PackageManager = PackageManager()
    val packageName: String = "dev.tidelog.example"
    val filesDir: File = File("files")

    fun registerActivityLifecycleCallbacks(callback: ActivityLifecycleCallbacks) {}

    interface ActivityLifecycleCallbacks {
        fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?)
        fun onActivityStarted(activity: Activity)
        fun onActivityResumed(activity: Activity)
        fun onActivityPaused(activity: Activity)
        fun onActivityStopped(activity: Activity)
        fun onActivitySaveInstanceState(activity: Activity, outState: Bundle)
        fun onActivityDestroyed(activity: Activity)
    }
}
