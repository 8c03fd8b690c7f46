(module
  (type (;0;) (func))
  (type (;1;) (func (param i32)))
  (type (;2;) (func (param i32) (result i32)))
  (type (;3;) (func (param i32 i64 i32)))
  (type (;4;) (func (param i32 i64 i64 i32)))
  (type (;5;) (func (param i32 i64 i64 i64 i32)))
  (import "heapscope" "alloc" (func $heapscope:alloc (;0;) (type 5)))
  (import "heapscope" "free" (func $heapscope:free (;1;) (type 3)))
  (import "heapscope" "realloc" (func $heapscope:realloc (;2;) (type 5)))
  (import "heapscope" "grow" (func $heapscope:grow (;3;) (type 4)))
  (import "heapscope" "flush" (func $heapscope:flush (;4;) (type 0)))
  (memory (;0;) 1)
  (memory (;1;) 17 17)
  (tag $oops (;0;) (type 0))
  (global $top (;0;) (mut i32) i32.const 1024)
  (global $heapscope:sp (;1;) (mut i32) i32.const 0)
  (global $heapscope:nest (;2;) (mut i32) i32.const 0)
  (global $heapscope:events (;3;) (mut i32) i32.const 1048576)
  (global $heapscope:events_cap (;4;) (mut i32) i32.const 65536)
  (export "memory" (memory 0))
  (export "_start" (func $main))
  (export "heapscope:global:0" (global $top))
  (export "heapscope:memory:0" (memory 0))
  (export "heapscope:shadow" (memory 1))
  (export "heapscope:sp" (global $heapscope:sp))
  (export "heapscope:events" (global $heapscope:events))
  (export "heapscope:events_cap" (global $heapscope:events_cap))
  (func $heapscope:record (;5;) (type 5) (param i32 i64 i64 i64 i32)
    (local i32 i32)
    block ;; label = @1
      block ;; label = @2
        local.get 4
        i32.const 96
        i32.add
        global.get $heapscope:events_cap
        i32.gt_u
        br_if 0 (;@2;)
        global.get $heapscope:events
        local.get 4
        i32.const 96
        i32.add
        i32.add
        i32.const 1048576
        global.get $heapscope:events_cap
        i32.add
        i32.gt_u
        if ;; label = @3
          call $heapscope:flush
          global.get $heapscope:events
          local.get 4
          i32.const 96
          i32.add
          i32.add
          i32.const 1048576
          global.get $heapscope:events_cap
          i32.add
          i32.gt_u
          br_if 1 (;@2;)
        else
        end
        global.get $heapscope:events
        local.set 5
        local.get 5
        local.get 0
        i32.store 1
        local.get 5
        local.get 1
        i64.store 1 offset=4 align=4
        local.get 5
        local.get 2
        i64.store 1 offset=12 align=4
        local.get 5
        local.get 3
        i64.store 1 offset=20 align=4
        local.get 5
        local.get 4
        i32.store 1 offset=28
        i32.const 0
        local.set 6
        loop ;; label = @3
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 6
          i32.const 64
          i32.add
          local.tee 6
          local.get 4
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 5
        i32.const 32
        i32.add
        local.get 4
        i32.add
        global.set $heapscope:events
        br 1 (;@1;)
      end
      local.get 0
      i32.const 24
      i32.shr_u
      i32.const 1
      i32.eq
      if ;; label = @2
        local.get 0
        i32.const 16777215
        i32.and
        local.get 1
        local.get 4
        call $heapscope:free
      else
        local.get 0
        i32.const 24
        i32.shr_u
        i32.const 2
        i32.eq
        if ;; label = @3
          local.get 0
          i32.const 16777215
          i32.and
          local.get 1
          local.get 2
          local.get 3
          local.get 4
          call $heapscope:realloc
        else
          local.get 0
          i32.const 24
          i32.shr_u
          i32.const 0
          i32.eq
          if ;; label = @4
            local.get 0
            i32.const 16777215
            i32.and
            local.get 1
            local.get 2
            local.get 3
            local.get 4
            call $heapscope:alloc
          else
          end
        end
      end
    end
  )
  (func $malloc (;6;) (type 2) (param i32) (result i32)
    (local i32 i32 i32 i32 i32 i64 i64 i64)
    global.get $heapscope:sp
    local.set 2
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    call $malloc.heapscope_original
    local.set 1
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      local.get 1
      i64.extend_i32_u
      local.get 0
      i64.extend_i32_u
      i64.const 0
      local.set 8
      local.set 7
      local.set 6
      i32.const 1
      local.set 3
      global.get $heapscope:events
      local.get 2
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 3
        local.get 6
        local.get 7
        local.get 8
        local.get 2
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 4
        local.get 4
        local.get 3
        i32.store 1
        local.get 4
        local.get 6
        i64.store 1 offset=4 align=4
        local.get 4
        local.get 7
        i64.store 1 offset=12 align=4
        local.get 4
        local.get 8
        i64.store 1 offset=20 align=4
        local.get 4
        local.get 2
        i32.store 1 offset=28
        i32.const 0
        local.set 5
        loop ;; label = @3
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 5
          i32.const 64
          i32.add
          local.tee 5
          local.get 2
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 4
        i32.const 32
        i32.add
        local.get 2
        i32.add
        global.set $heapscope:events
      end
    else
    end
    local.get 1
  )
  (func $free (;7;) (type 1) (param i32)
    (local i32 i32 i32 i32 i64 i64 i64)
    global.get $heapscope:sp
    local.set 1
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      local.get 0
      i64.extend_i32_u
      i64.const 0
      i64.const 0
      local.set 7
      local.set 6
      local.set 5
      i32.const 16777220
      local.set 2
      global.get $heapscope:events
      local.get 1
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 2
        local.get 5
        local.get 6
        local.get 7
        local.get 1
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 3
        local.get 3
        local.get 2
        i32.store 1
        local.get 3
        local.get 5
        i64.store 1 offset=4 align=4
        local.get 3
        local.get 6
        i64.store 1 offset=12 align=4
        local.get 3
        local.get 7
        i64.store 1 offset=20 align=4
        local.get 3
        local.get 1
        i32.store 1 offset=28
        i32.const 0
        local.set 4
        loop ;; label = @3
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 4
          i32.const 64
          i32.add
          local.tee 4
          local.get 1
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 3
        i32.const 32
        i32.add
        local.get 1
        i32.add
        global.set $heapscope:events
      end
    else
    end
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    call $free.heapscope_original
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
  )
  (func $catcher (;8;) (type 0)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    block ;; label = @1
      try_table (catch $oops 0 (;@1;)) ;; label = @2
        local.get 0
        i32.const 4
        i32.store 1
        local.get 1
        global.set $heapscope:sp
        call $middle
      end
    end
    i32.const 32
    local.get 0
    i32.const 3
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $malloc
    drop
  )
  (func $middle (;9;) (type 0)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    local.get 0
    i32.const 1
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $deep
    i32.const 999
    local.get 0
    i32.const 2
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $malloc
    drop
  )
  (func $main (;10;) (type 0)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    local.get 0
    i32.const 5
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $catcher
    i32.const 33
    local.get 0
    i32.const 6
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $malloc
    drop
  )
  (func $deep (;11;) (type 0)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    i32.const 31
    local.get 0
    i32.const 0
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $malloc
    drop
    throw $oops
  )
  (func $malloc.heapscope_original (;12;) (type 2) (param i32) (result i32)
    (local i32 i32 i32)
    global.get $heapscope:sp
    local.tee 2
    i32.const 4
    i32.add
    local.set 3
    global.get $top
    local.set 1
    global.get $top
    local.get 0
    i32.add
    global.set $top
    local.get 1
  )
  (func $heapscope:grow:0 (;13;) (type 2) (param i32) (result i32)
    (local i32)
    local.get 0
    memory.grow
    local.set 1
    i32.const 0
    local.get 0
    i64.extend_i32_u
    local.get 1
    i64.extend_i32_s
    global.get $heapscope:sp
    call $heapscope:grow
    local.get 1
  )
  (func $free.heapscope_original (;14;) (type 1) (param i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 1
    i32.const 4
    i32.add
    local.set 2
  )
  (@producers
    (processed-by "walrus" "0.28.0")
  )
  (@custom "heapscope.sites" (after code) "\01\04\04deep\06middle\07catcher\04main\07\02\1a\01\00\00\00\00\03\22\01\01\00\00\00\03'\01\01\00\00\00\04;\01\02\00\00\00\045\01\02\00\00\00\05A\01\03\00\00\00\05E\01\03\00\00\00")
  (@custom "heapscope.code_map" (after code) "\01\06\08\04\d3\086\04\00Z\0c\00\14\10\12\0c\09\03\8a\09-\03\00D\18\00\11\0a\0a\05\b8\09,\03\00\82\01\18\00\10\08\0b\02\e5\09 \03\000\0c\00\0e\04\0c\00\86\0a\1a\02\00\0a\0c\00\0e\01\ba\0a\0d\02\00*\0c\00")
)
