"""Option names gcc 12 lists in `gcc --help=CLASS` (x86-64) for the classes common,
optimizers, warnings, target, params, c, c++ and undocumented, without `no-` and values.

Data for `compiler/options.py`; regenerate with `scripts/gcc_option_names.py`.
"""

GCC_F_NAMES = """
    PIC PIE abi-compat-version abi-version access-control ada-spec-parent
    aggressive-loop-optimizations align-functions align-jumps align-labels align-loops
    aligned-new all-virtual allocation-dce allow-leading-underscore
    allow-parameterless-variadic-functions allow-store-data-races alt-external-templates
    analyzer analyzer-call-summaries analyzer-checker analyzer-feasibility
    analyzer-fine-grained analyzer-show-duplicate-count analyzer-state-merge
    analyzer-state-purge analyzer-transitivity analyzer-verbose-edges
    analyzer-verbose-state-changes analyzer-verbosity argument-alias argument-noalias
    argument-noalias-anything argument-noalias-global asan-shadow-offset asm
    associative-math asynchronous-unwind-tables auto-inc-dec auto-profile bit-tests
    branch-count-reg branch-probabilities branch-target-load-optimize
    branch-target-load-optimize2 btr-bb-exclusive building-libgcc building-libgfortran
    building-libphobos-tests builtin builtin- builtin-printf call-saved- call-used-
    caller-saves callgraph-info canonical-system-headers cf-protection char8_t
    check-data-deps check-new check-pointer-bounds checking chkp-check-incomplete-type
    chkp-check-read chkp-check-write chkp-first-field-has-own-bounds
    chkp-flexible-struct-trailing-arrays chkp-instrument-calls
    chkp-instrument-marked-only chkp-narrow-bounds chkp-narrow-to-innermost-array
    chkp-optimize chkp-store-bounds chkp-treat-zero-dynamic-size-as-infinite
    chkp-use-fast-string-functions chkp-use-nochk-string-functions
    chkp-use-static-bounds chkp-use-static-const-bounds chkp-use-wrappers
    chkp-zero-input-bounds-for-main cilkplus code-hoisting combine-stack-adjustments
    common compare-debug compare-debug-second compare-elim concepts
    concepts-diagnostics-depth concepts-ts cond-mismatch conserve-space conserve-stack
    constexpr-cache-depth constexpr-depth constexpr-fp-except constexpr-loop-limit
    constexpr-ops-limit coroutines cprop-registers crossjumping cse-follow-jumps
    cse-skip-blocks cx-fortran-rules cx-limited-range data-sections dbg-cnt dbg-cnt-list
    dce debug-cpp debug-prefix-map debug-types-section declone-ctor-dtor
    deduce-init-list default-inline defer-pop delayed-branch delete-dead-exceptions
    delete-null-pointer-checks devirtualize devirtualize-at-ltrans
    devirtualize-speculatively diagnostics-color diagnostics-column-origin
    diagnostics-column-unit diagnostics-escape-format diagnostics-format
    diagnostics-generate-patch diagnostics-minimum-margin-width
    diagnostics-parseable-fixits diagnostics-path-format diagnostics-plain-output
    diagnostics-show-caret diagnostics-show-cwe diagnostics-show-labels
    diagnostics-show-line-numbers diagnostics-show-location diagnostics-show-option
    diagnostics-show-path-depths diagnostics-show-template-tree diagnostics-urls
    directives-only disable- dollars-in-identifiers dse dump- dump-ada-spec
    dump-ada-spec-slim dump-analyzer dump-analyzer-callgraph
    dump-analyzer-exploded-graph dump-analyzer-exploded-nodes
    dump-analyzer-exploded-nodes-2 dump-analyzer-exploded-nodes-3
    dump-analyzer-exploded-paths dump-analyzer-feasibility dump-analyzer-json
    dump-analyzer-state-purge dump-analyzer-stderr dump-analyzer-supergraph
    dump-analyzer-untracked dump-final-insns dump-go-spec dump-internal-locations
    dump-noaddr dump-passes dump-unnumbered dump-unnumbered-links dwarf2-cfi-asm
    early-inlining elide-constructors elide-type eliminate-dwarf2-dups
    eliminate-unused-debug-symbols eliminate-unused-debug-types emit-class-debug-always
    emit-struct-debug-baseonly emit-struct-debug-detailed emit-struct-debug-reduced
    enable- enforce-eh-specs enum-int-equiv exceptions excess-precision exec-charset
    expensive-optimizations ext-numeric-literals extended-identifiers extern-tls-init
    external-templates fast-math fat-lto-objects file-prefix-map finite-loops
    finite-math-only fixed- float-store fold-simple-inlines for-scope force-addr
    forward-propagate fp-contract fp-int-builtin-inexact freestanding friend-injection
    function-cse function-sections gcse gcse-after-reload gcse-las gcse-lm gcse-sm
    gimple gnat-encodings gnu-keywords gnu-tm gnu-unique gnu89-inline graphite
    graphite-identity guess-branch-probability guiding-decls handle-exceptions
    harden-compares harden-conditional-branches help hoist-adjacent-loads honor-std
    hosted huge-objects ident if-conversion if-conversion2 implement-inlines
    implicit-constexpr implicit-inline-templates implicit-templates indirect-inlining
    inhibit-size-directive inline inline-atomics inline-functions
    inline-functions-called-once inline-limit inline-limit- inline-small-functions
    input-charset instrument-functions instrument-functions-exclude-file-list
    instrument-functions-exclude-function-list ipa-bit-cp ipa-cp ipa-cp-alignment
    ipa-cp-clone ipa-icf ipa-icf-functions ipa-icf-variables ipa-matrix-reorg ipa-modref
    ipa-profile ipa-pta ipa-pure-const ipa-ra ipa-reference ipa-reference-addressable
    ipa-sra ipa-stack-alignment ipa-strict-aliasing ipa-struct-reorg ipa-vrp
    ira-algorithm ira-hoist-pressure ira-loop-pressure ira-region ira-share-save-slots
    ira-share-spill-slots ira-verbose isolate-erroneous-paths-attribute
    isolate-erroneous-paths-dereference ivopts jump-tables keep-gc-roots-live
    keep-inline-functions keep-static-consts keep-static-functions labels-ok
    lang-info-include-translate lang-info-include-translate-not lang-info-module-cmi
    large-source-files lax-vector-conversions leading-underscore lifetime-dse
    limit-function-alignment live-patching live-range-shrinkage loop-block loop-flatten
    loop-interchange loop-nest-optimize loop-optimize loop-parallelize-all
    loop-strip-mine loop-unroll-and-jam lra-remat lto lto-compression-level
    lto-odr-type-merging lto-partition lto-report lto-report-wpa macro-prefix-map
    math-errno max-errors max-include-depth mem-report mem-report-wpa
    merge-all-constants merge-constants merge-debug-strings message-length module-header
    module-implicit-inline module-lazy module-mapper module-only module-version-ignore
    modules modules-ts modulo-sched modulo-sched-allow-regmoves move-loop-invariants
    move-loop-stores ms-extensions mudflap mudflapir mudflapth name-mangling-version-
    new-abi new-inheriting-ctors new-ttp-matching non-call-exceptions nonansi-builtins
    nonnull-objects nothrow-opt offload-abi offload-options omit-frame-pointer openacc
    openacc-dim openmp openmp-simd operator-names opt-info optimize-register-move
    optimize-sibling-calls optimize-strlen optional-diags pack-struct partial-inlining
    patchable-function-entry pcc-struct-return pch-deps pch-preprocess peel-loops
    peephole peephole2 permissive permitted-flt-eval-methods pic pie plan9-extensions
    plt plugin plugin-arg- post-ipa-mem-report pre-include pre-ipa-mem-report
    predictive-commoning prefetch-loop-arrays preprocessed pretty-templates
    printf-return-value profile profile-abs-path profile-arcs profile-correction
    profile-dir profile-exclude-files profile-filter-files profile-generate
    profile-info-section profile-note profile-partial-training profile-prefix-map
    profile-prefix-path profile-reorder-functions profile-report profile-reproducible
    profile-update profile-use profile-values random-seed reciprocal-math
    record-gcc-switches ree reg-struct-return regmove rename-registers reorder-blocks
    reorder-blocks-algorithm reorder-blocks-and-partition reorder-functions repo
    report-bug require-return-statement rerun-cse-after-loop rerun-loop-opt
    reschedule-modulo-scheduled-loops rounding-math rtti sanitize
    sanitize-address-use-after-scope sanitize-coverage sanitize-recover
    sanitize-sections sanitize-undefined-trap-on-error save-optimization-record
    sched-critical-path-heuristic sched-dep-count-heuristic sched-group-heuristic
    sched-interblock sched-last-insn-heuristic sched-pressure sched-rank-heuristic
    sched-spec sched-spec-insn-heuristic sched-spec-load sched-spec-load-dangerous
    sched-stalled-insns sched-stalled-insns-dep sched-verbose sched2-use-superblocks
    sched2-use-traces schedule-fusion schedule-insns schedule-insns2 section-anchors see
    sel-sched-pipelining sel-sched-pipelining-outer-loops sel-sched-reschedule-pipelined
    selective-scheduling selective-scheduling2 self-test semantic-interposition
    short-enums short-wchar show-column shrink-wrap shrink-wrap-separate signaling-nans
    signed-bitfields signed-char signed-zeros simd-cost-model single-precision-constant
    sized-deallocation split-ivs-in-unroller split-loops split-paths split-stack
    split-wide-types split-wide-types-early squangle ssa-backprop ssa-phiopt sso-struct
    stack-check stack-clash-protection stack-limit stack-limit-register
    stack-limit-symbol stack-protector stack-protector-all stack-protector-explicit
    stack-protector-strong stack-reuse stack-usage stats stdarg-opt store-merging
    strength-reduce strict-aliasing strict-enums strict-overflow strict-prototype
    strict-volatile-bitfields strong-eval-order sync-libcalls syntax-only tabstop
    target-help template-backtrace-limit template-depth template-depth- test-coverage
    this-is-variable thread-jumps threadsafe-statics time-report time-report-details
    tls-model toplevel-reorder tracer track-macro-expansion trampolines trapping-math
    trapv tree-bit-ccp tree-builtin-call-dce tree-ccp tree-ch tree-coalesce-inlined-vars
    tree-coalesce-vars tree-copy-prop tree-copyrename tree-cselim tree-dce
    tree-dominator-opts tree-dse tree-forwprop tree-fre tree-loop-distribute-patterns
    tree-loop-distribution tree-loop-if-convert tree-loop-if-convert-stores tree-loop-im
    tree-loop-ivcanon tree-loop-linear tree-loop-optimize tree-loop-vectorize tree-lrs
    tree-parallelize-loops tree-partial-pre tree-phiprop tree-pre tree-pta tree-reassoc
    tree-salias tree-scev-cprop tree-sink tree-slp-vectorize tree-slsr tree-sra
    tree-store-ccp tree-store-copy-prop tree-switch-conversion tree-tail-merge tree-ter
    tree-vect-loop-version tree-vectorize tree-vectorizer-verbose tree-vrp
    trivial-auto-var-init unconstrained-commons unit-at-a-time unroll-all-loops
    unroll-completely-grow-size unroll-loops unsafe-loop-optimizations
    unsafe-math-optimizations unsigned-bitfields unsigned-char unswitch-loops
    unwind-tables use-cxa-atexit use-cxa-get-exception-ptr use-ld use-linker-plugin
    var-tracking var-tracking-assignments var-tracking-assignments-toggle
    var-tracking-uninit variable-expansion-in-unroller vect-cost-model verbose-asm
    version version-loops-for-strides visibility visibility-inlines-hidden
    visibility-ms-compat vpt vtable-gc vtable-thunks vtable-verify vtv-counts vtv-debug
    weak web whole-program wide-exec-charset working-directory wrapv wrapv-pointer xref
    zee zero-call-used-regs zero-initialized-in-bss
    """

GCC_M_NAMES = """
    128bit-long-double 16 32 3dnow 3dnowa 64 80387 8bit-idiv 96bit-long-double abi abm
    accumulate-outgoing-args address-mode adx aes align-data align-double
    align-functions align-jumps align-loops align-stringops amx-bf16 amx-int8 amx-tile
    android arch asm avx avx2 avx256-split-unaligned-load avx256-split-unaligned-store
    avx5124fmaps avx5124vnniw avx512bf16 avx512bitalg avx512bw avx512cd avx512dq
    avx512er avx512f avx512fp16 avx512ifma avx512pf avx512vbmi avx512vbmi2 avx512vl
    avx512vnni avx512vp2intersect avx512vpopcntdq avxvnni bionic bmi bmi2 branch-cost
    call-ms2sysv-xlogues cet-switch cld cldemote clflushopt clwb clzero cmodel cpu crc32
    cx16 default direct-extern-access dispatch-scheduler dump-tune-features enqcmd f16c
    fancy-math-387 fentry fentry-name fentry-section fma fma4 force-drap
    force-indirect-call fp-ret-in-387 fpmath fsgsbase function-return fused-madd fxsr
    general-regs-only gfni glibc hard-float harden-sls hle hreset iamcu ieee-fp
    incoming-stack-boundary indirect-branch indirect-branch-cs-prefix
    indirect-branch-register inline-all-stringops inline-stringops-dynamically
    instrument-return intel-syntax kl large-data-threshold long-double-128
    long-double-64 long-double-80 lwp lzcnt manual-endbr memcpy-strategy memset-strategy
    mitigate-rop mmx movbe movdir64b movdiri move-max mpx ms-bitfields musl mwait mwaitx
    needed nop-mcount omit-leaf-frame-pointer pc32 pc64 pc80 pclmul pcommit pconfig pku
    popcnt prefer-avx128 prefer-vector-width preferred-stack-boundary prefetchwt1 prfchw
    ptwrite push-args rdpid rdrnd rdseed recip record-mcount record-return red-zone
    regparm relax-cmpxchg-loop rtd rtm sahf serialize sgx sha shstk skip-rax-setup
    soft-float sse sse2 sse2avx sse3 sse4 sse4.1 sse4.2 sse4a sse5 sseregparm ssse3
    stack-arg-probe stack-protector-guard stack-protector-guard-offset
    stack-protector-guard-reg stack-protector-guard-symbol stackrealign store-max
    stringop-strategy stv tbm tls-dialect tls-direct-seg-refs tsxldtrk tune tune-ctrl
    uclibc uintr vaes veclibabi vect8-ret-in-mem vpclmulqdq vzeroupper waitpkg wbnoinvd
    widekl x32 xop xsave xsavec xsaveopt xsaves
    """

GCC_PARAMS = """
    align-loop-iterations align-threshold analyzer-bb-explosion-factor
    analyzer-max-constraints analyzer-max-enodes-for-full-dump
    analyzer-max-enodes-per-program-point analyzer-max-infeasible-edges
    analyzer-max-recursion-depth analyzer-max-svalue-depth
    analyzer-min-snodes-for-call-summary asan-globals asan-instrument-allocas
    asan-instrument-reads asan-instrument-writes
    asan-instrumentation-with-call-threshold asan-memintrin asan-stack
    asan-use-after-return avg-loop-niter avoid-fma-max-bits builtin-expect-probability
    builtin-string-cmp-inline-length case-values-threshold comdat-sharing-probability
    constructive-interference-size cxx-max-namespaces-for-diagnostic-help
    destructive-interference-size dse-max-alias-queries-per-store dse-max-object-size
    early-inlining-insns evrp-mode evrp-sparse-threshold evrp-switch-limit
    fsm-scale-path-blocks fsm-scale-path-stmts gcse-after-reload-critical-fraction
    gcse-after-reload-partial-fraction gcse-cost-distance-ratio gcse-unrestricted-cost
    ggc-min-expand ggc-min-heapsize gimple-fe-computed-hot-bb-threshold
    graphite-allow-codegen-errors graphite-max-arrays-per-scop
    graphite-max-nb-scop-params hash-table-verification-limit hot-bb-count-fraction
    hot-bb-count-ws-permille hot-bb-frequency-fraction hwasan-instrument-allocas
    hwasan-instrument-mem-intrinsics hwasan-instrument-reads hwasan-instrument-stack
    hwasan-instrument-writes hwasan-random-frame-tag inline-heuristics-hint-percent
    inline-min-speedup inline-unit-growth integer-share-limit ipa-cp-eval-threshold
    ipa-cp-large-unit-insns ipa-cp-loop-hint-bonus ipa-cp-max-recursive-depth
    ipa-cp-min-recursive-probability ipa-cp-profile-count-base ipa-cp-recursion-penalty
    ipa-cp-recursive-freq-factor ipa-cp-single-call-penalty ipa-cp-unit-growth
    ipa-cp-value-list-size ipa-jump-function-lookups ipa-max-aa-steps ipa-max-agg-items
    ipa-max-loop-predicates ipa-max-param-expr-ops ipa-max-switch-predicate-bounds
    ipa-sra-max-replacements ipa-sra-ptr-growth-factor ira-consider-dup-in-all-alts
    ira-loop-reserved-regs ira-max-conflict-table-size ira-max-loops-num
    iv-always-prune-cand-set-bound iv-consider-all-candidates-bound
    iv-max-considered-uses jump-table-max-growth-ratio-for-size
    jump-table-max-growth-ratio-for-speed l1-cache-line-size l1-cache-size l2-cache-size
    large-function-growth large-function-insns large-stack-frame
    large-stack-frame-growth large-unit-insns lazy-modules lim-expensive
    logical-op-non-short-circuit loop-block-tile-size loop-interchange-max-num-stmts
    loop-interchange-stride-ratio loop-invariant-max-bbs-in-loop
    loop-max-datarefs-for-datadeps loop-versioning-max-inner-insns
    loop-versioning-max-outer-insns lra-inheritance-ebb-probability-cutoff
    lra-max-considered-reload-pseudos lto-max-partition lto-max-streaming-parallelism
    lto-min-partition lto-partitions max-average-unrolled-insns max-combine-insns
    max-completely-peel-loop-nest-depth max-completely-peel-times
    max-completely-peeled-insns max-crossjump-edges max-cse-insns max-cse-path-length
    max-cselib-memory-locations max-debug-marker-count max-delay-slot-insn-search
    max-delay-slot-live-search max-dse-active-local-stores max-early-inliner-iterations
    max-fields-for-field-sensitive max-find-base-term-values max-fsm-thread-length
    max-fsm-thread-path-insns max-gcse-insertion-ratio max-gcse-memory
    max-goto-duplication-insns max-grow-copy-bb-insns max-hoist-depth
    max-inline-functions-called-once-insns max-inline-functions-called-once-loop-depth
    max-inline-insns-auto max-inline-insns-recursive max-inline-insns-recursive-auto
    max-inline-insns-single max-inline-insns-size max-inline-insns-small
    max-inline-recursive-depth max-inline-recursive-depth-auto max-isl-operations
    max-iterations-computation-cost max-iterations-to-track
    max-jump-thread-duplication-stmts max-last-value-rtl max-loop-header-insns
    max-modulo-backtrack-attempts max-partial-antic-length max-peel-branches
    max-peel-times max-peeled-insns max-pending-list-length max-pipeline-region-blocks
    max-pipeline-region-insns max-pow-sqrt-depth max-predicted-iterations
    max-reload-search-insns max-rtl-if-conversion-insns
    max-rtl-if-conversion-predictable-cost max-rtl-if-conversion-unpredictable-cost
    max-sched-extend-regions-iters max-sched-insn-conflict-delay max-sched-ready-insns
    max-sched-region-blocks max-sched-region-insns max-slsr-cand-scan
    max-speculative-devirt-maydefs max-ssa-name-query-depth max-store-chains-to-track
    max-stores-to-merge max-stores-to-sink max-stores-to-track
    max-tail-merge-comparisons max-tail-merge-iterations max-tracked-strlens
    max-tree-if-conversion-phi-args max-unroll-times max-unrolled-insns
    max-unswitch-insns max-unswitch-level max-variable-expansions-in-unroller
    max-vartrack-expr-depth max-vartrack-reverse-op-size max-vartrack-size
    max-vrp-switch-assertions min-crossjump-insns min-inline-recursive-probability
    min-insn-to-prefetch-ratio min-loop-cond-split-prob min-nondebug-insn-uid
    min-pagesize min-size-for-stack-sharing min-spec-prob min-vect-loop-bound
    modref-max-accesses modref-max-adjustments modref-max-bases modref-max-depth
    modref-max-escape-points modref-max-refs modref-max-tests openacc-kernels
    openacc-privatization parloops-chunk-size parloops-min-per-thread parloops-schedule
    partial-inlining-entry-probability predictable-branch-outcome
    prefetch-dynamic-strides prefetch-latency prefetch-min-insn-to-mem-ratio
    prefetch-minimum-stride profile-func-internal-id ranger-debug ranger-logical-depth
    relation-block-limit rpo-vn-max-loop-depth sccvn-max-alias-queries-per-access
    scev-max-expr-complexity scev-max-expr-size sched-autopref-queue-depth
    sched-mem-true-dep-cost sched-pressure-algorithm sched-spec-prob-cutoff
    sched-state-edge-prob-cutoff selsched-insns-to-rename selsched-max-lookahead
    selsched-max-sched-times simultaneous-prefetches sink-frequency-threshold
    sms-dfa-history sms-loop-average-count-threshold sms-max-ii-factor sms-min-sc
    sra-max-propagations ssa-name-def-chain-limit ssp-buffer-size
    stack-clash-protection-guard-size stack-clash-protection-probe-interval
    store-merging-allow-unaligned store-merging-max-size
    switch-conversion-max-branch-ratio threader-debug tm-max-aggregate-size
    tracer-dynamic-coverage tracer-dynamic-coverage-feedback tracer-max-code-growth
    tracer-min-branch-probability tracer-min-branch-probability-feedback
    tracer-min-branch-ratio tree-reassoc-width tsan-distinguish-volatile
    tsan-instrument-func-entry-exit uninit-control-dep-attempts uninlined-function-insns
    uninlined-function-time uninlined-thunk-insns uninlined-thunk-time
    unlikely-bb-count-fraction unroll-jam-max-unroll unroll-jam-min-percent
    use-after-scope-direct-emission-threshold use-canonical-types vect-epilogues-nomask
    vect-induction-float vect-inner-loop-cost-factor vect-max-peeling-for-alignment
    vect-max-version-for-alias-checks vect-max-version-for-alignment-checks
    vect-partial-vector-usage vrp1-mode vrp2-mode x86-stlf-window-ninsns
    """
