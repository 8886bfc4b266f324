/// How much of the test set the trainer's per-epoch exact evaluation of a categorical latent
/// decodes. Exact evaluation decodes every category of every image: K x images decoder rows
/// (256 categories over 10,000 images took 73 s per epoch, 4,096 would take about 20 minutes).
///
/// Choice: the evaluation stays exact, over the first `images(categories:total:)` test images
/// (the same images every epoch and for any number of ranks, so test losses stay comparable
/// and `best` still means best): all of them while K x images fits `decoderRows`, i.e. the
/// whole MNIST test set up to K = 10 (the Gumbel config), then floor(decoderRows / K) images
/// (390 for K = 256, 24 for K = 4,096), never fewer than `minimumImages`. 100,000 decoder
/// rows took about 4 s for the seed Gumbel model (K = 256 over 2,500 images, 640,000 rows,
/// still took 36 s with a 64-wide decoder). `disttrain eval` is not bounded: it
/// evaluates what --count asks for, with progress on stderr.
public enum CategoricalBudget {
    /// Decoder rows per epoch's test evaluation: the whole 10,000-image test set at K = 10.
    public static let decoderRows = 100_000
    /// Fewest images evaluated, however many categories.
    public static let minimumImages = 10

    /// Test images (counted from the start of the test set) the trainer evaluates.
    public static func images(categories: Int, total: Int) -> Int {
        min(total, max(minimumImages, decoderRows / max(categories, 1)))
    }

    /// Of a contiguous shard starting at global record `firstIndex` with `count` records, how
    /// many (from its start) lie among the first `images` of the whole set.
    public static func localLimit(images: Int, firstIndex: Int, count: Int) -> Int {
        min(count, max(0, images - firstIndex))
    }
}
