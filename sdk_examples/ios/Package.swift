// swift-tools-version:5.7
// Tidelog's example iOS client: the core (Foundation only) and the UIKit glue.
import PackageDescription

let package = Package(
    name: "Tidelog",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Tidelog", targets: ["Tidelog", "TidelogUIKit"]),
    ],
    targets: [
        .target(name: "Tidelog", path: "Sources/Tidelog"),
        .target(name: "TidelogUIKit", dependencies: ["Tidelog"], path: "Sources/TidelogUIKit"),
    ]
)
