#if canImport(UIKit)
import Foundation
import Tidelog
import UIKit

/// The platform glue for iOS (the twin of TidelogAndroid.kt): the storage folder in Application
/// Support, the device fields from UIDevice and the app's Info.plist, and the app's lifecycle
/// (didBecomeActive → onForeground, didEnterBackground → onBackground, whose flush runs inside a
/// background task so iOS gives it time). Call `setup` once, on the main thread, at launch:
/// from `application(_:didFinishLaunchingWithOptions:)` or a SwiftUI `App`'s `init`.
public enum TidelogUIKit {
    /// `<Application Support>/tidelog`: kept across launches and app updates, backed up,
    /// never shown to the user (Files app) and never purged by the system, unlike Caches.
    public static func storageFolder() -> URL {
        let support = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask).first
            ?? URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent("Library/Application Support", isDirectory: true)
        return support.appendingPathComponent("tidelog", isDirectory: true)
    }

    /// The app's version as the App Store shows it (CFBundleShortVersionString, "1.4.0").
    public static func appVersion() -> String? {
        return Bundle.main.infoDictionary?["CFBundleShortVersionString"] as? String
    }

    /// A config with this device's fields and the storage folder filled in.
    public static func config(
        host: String,
        apiKey: String,
        flushAt: Int = 100,
        bootstrapFlags: [String: Any] = [:],
        personProperties: [String: Any] = [:],
        log: @escaping (String) -> Void = { _ in }
    ) -> TidelogConfig {
        let device = UIDevice.current
        return TidelogConfig(
            host: host,
            apiKey: apiKey,
            storage: storageFolder(),
            appVersion: appVersion(),
            osName: device.systemName, // "iOS" ("iPadOS" on an iPad)
            osVersion: device.systemVersion, // "18.2"
            flushAt: flushAt,
            bootstrapFlags: bootstrapFlags,
            personProperties: personProperties,
            log: log
        )
    }

    /// Makes the client and ties it to the app's lifecycle. Keep the returned client (one per app).
    public static func setup(
        host: String,
        apiKey: String,
        flushAt: Int = 100,
        bootstrapFlags: [String: Any] = [:],
        personProperties: [String: Any] = [:],
        log: @escaping (String) -> Void = { _ in }
    ) -> Tidelog {
        let tidelog = Tidelog(config: config(
            host: host, apiKey: apiKey, flushAt: flushAt,
            bootstrapFlags: bootstrapFlags, personProperties: personProperties, log: log
        ))
        observeLifecycle(of: tidelog)
        return tidelog
    }

    /// The notification observers, kept so `stopObserving` can remove them.
    private static var observers: [NSObjectProtocol] = []

    /// didBecomeActive → onForeground; didEnterBackground → onBackground, inside a background task.
    /// didBecomeActive also follows a short interruption (a call, Control Center) with no
    /// background: onForeground then only keeps the session going.
    public static func observeLifecycle(of tidelog: Tidelog) {
        let center = NotificationCenter.default
        observers.append(center.addObserver(forName: UIApplication.didBecomeActiveNotification, object: nil, queue: .main) { _ in
            tidelog.onForeground()
        })
        observers.append(center.addObserver(forName: UIApplication.didEnterBackgroundNotification, object: nil, queue: .main) { _ in
            flushInBackground(tidelog)
        })
        // Set up after the app became active (not at launch): the session starts now.
        if UIApplication.shared.applicationState == .active {
            tidelog.onForeground()
        }
    }

    public static func stopObserving() {
        for observer in observers {
            NotificationCenter.default.removeObserver(observer)
        }
        observers.removeAll()
    }

    /// A background task for the flush: without one, iOS suspends the app within a few seconds
    /// of didEnterBackground, in the middle of the request. The task ends when the queue is
    /// empty, after 20 s (offline: the queue waits on disk for the next launch), or when iOS
    /// says time is up, whichever comes first.
    private static func flushInBackground(_ tidelog: Tidelog) {
        let application = UIApplication.shared
        let task = BackgroundTask()
        task.identifier = application.beginBackgroundTask(withName: "tidelog flush") {
            task.end(application) // called on the main thread when time is up
        }
        tidelog.onBackground() // queues the flush on the client's own queue
        DispatchQueue.global(qos: .utility).async {
            _ = tidelog.awaitEmpty(timeout: 20)
            DispatchQueue.main.async {
                task.end(application)
            }
        }
    }

    /// A background task's identifier, touched on the main thread only; ended once.
    private final class BackgroundTask {
        var identifier: UIBackgroundTaskIdentifier = .invalid

        func end(_ application: UIApplication) {
            if identifier != .invalid {
                application.endBackgroundTask(identifier)
                identifier = .invalid
            }
        }
    }
}
#endif
