/// `tensorflow.Event` messages (tensorflow/core/util/event.proto, framework/summary.proto).
enum TensorBoardEvent {
    // Event
    static let wallTimeField = 1, stepField = 2, fileVersionField = 3, summaryField = 5, sessionLogField = 7
    // Summary, Summary.Value, Summary.Image, SessionLog
    static let summaryValueField = 1
    static let valueTagField = 1, valueSimpleValueField = 2, valueImageField = 4
    static let imageHeightField = 1, imageWidthField = 2, imageColorspaceField = 3, imageEncodedField = 4
    static let sessionStatusField = 1, sessionStatusStart: Int64 = 1

    static let fileVersion = "brain.Event:2"

    static func fileVersion(wallTime: Double) -> [UInt8] {
        var e = ProtoWriter()
        e.double(wallTimeField, wallTime)
        e.string(fileVersionField, fileVersion)
        return e.bytes
    }

    static func scalar(tag: String, value: Float, step: Int64, wallTime: Double) -> [UInt8] {
        summary(step: step, wallTime: wallTime) { v in
            v.string(valueTagField, tag)
            v.float(valueSimpleValueField, value)
        }
    }

    static func image(tag: String, png: [UInt8], width: Int, height: Int, colorspace: Int,
                      step: Int64, wallTime: Double) -> [UInt8] {
        summary(step: step, wallTime: wallTime) { v in
            v.string(valueTagField, tag)
            v.message(valueImageField) { i in
                i.int(imageHeightField, Int64(height))
                i.int(imageWidthField, Int64(width))
                i.int(imageColorspaceField, Int64(colorspace))
                i.data(imageEncodedField, png)
            }
        }
    }

    static func sessionStart(step: Int64, wallTime: Double) -> [UInt8] {
        var e = ProtoWriter()
        e.double(wallTimeField, wallTime)
        e.int(stepField, step)
        e.message(sessionLogField) { s in s.int(sessionStatusField, sessionStatusStart) }
        return e.bytes
    }

    /// An event holding a summary with one value.
    private static func summary(step: Int64, wallTime: Double, value: (inout ProtoWriter) -> Void) -> [UInt8] {
        var e = ProtoWriter()
        e.double(wallTimeField, wallTime)
        e.int(stepField, step)
        e.message(summaryField) { s in s.message(summaryValueField, value) }
        return e.bytes
    }
}

