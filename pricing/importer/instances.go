package importer

// The mapping tables: which of a provider's instance types gpux compares
// against, with the GPU model (a gpu_model text pricing.ModelGPU knows) and
// the GPUs in one instance. Instance types not listed are skipped by the
// importers. docs/PRICES.md shows the same tables.

// instance is a provider's instance type as the rates file names it.
type instance struct {
	model string // gpu_model, e.g. "H100 SXM 80GB"
	gpus  int
}

// awsInstances maps EC2 instanceType → GPU.
var awsInstances = map[string]instance{
	"p5.4xlarge":       {"H100 SXM 80GB", 1},
	"p5.48xlarge":      {"H100 SXM 80GB", 8},
	"p5e.48xlarge":     {"H200", 8},
	"p5en.48xlarge":    {"H200", 8},
	"p6-b200.48xlarge": {"B200", 8},
	"p4d.24xlarge":     {"A100 40GB", 8},
	"p4de.24xlarge":    {"A100 80GB", 8},
	"g6e.xlarge":       {"L40S", 1},
	"g6e.12xlarge":     {"L40S", 4},
	"g6e.48xlarge":     {"L40S", 8},
	"g6.xlarge":        {"L4", 1},
	"g6.12xlarge":      {"L4", 4},
	"g6.48xlarge":      {"L4", 8},
}

// azureInstances maps the Retail Prices API's armSkuName → GPU.
var azureInstances = map[string]instance{
	"Standard_ND96isr_H100_v5":   {"H100 SXM 80GB", 8},
	"Standard_ND96isr_H200_v5":   {"H200", 8},
	"Standard_ND96amsr_A100_v4":  {"A100 80GB", 8},
	"Standard_ND96asr_v4":        {"A100 40GB", 8},
	"Standard_ND96isr_MI300X_v5": {"MI300X", 8},
}

// gcpMachine is a Compute Engine machine type and the SKUs its hourly
// price is the sum of: gpus × the GPU SKU + vcpus × the core SKU + memGiB ×
// the RAM SKU (+ localSSDGiB × the Local SSD SKU's monthly rate / 730 for
// the SSD the machine type bundles). SKUs are named by their description
// without the region ("Nvidia H100 80GB GPU" matches "Nvidia H100 80GB GPU
// running in Americas"); Spot SKUs are the same descriptions with
// "Spot Preemptible " before them or " attached to Spot Preemptible VMs"
// inside them.
type gcpMachine struct {
	machineType string
	instance
	vcpus, memGiB, localSSDGiB int64
	gpuSKU, coreSKU, ramSKU    string
}

// localSSDSKU is the Local SSD SKU description; its unit is GiB-month.
const localSSDSKU = "SSD backed Local Storage"

// hoursPerMonth converts a GiB-month rate to GiB-hours, as Google's
// calculator does (730 h).
const hoursPerMonth = 730

// gcpMachines is the composition table (vCPUs, memory and bundled SSD as
// Google documents each machine type).
var gcpMachines = []gcpMachine{
	{"a3-highgpu-8g", instance{"H100 SXM 80GB", 8}, 208, 1872, 6000, "Nvidia H100 80GB GPU", "A3 Instance Core", "A3 Instance Ram"},
	{"a2-highgpu-1g", instance{"A100 40GB", 1}, 12, 85, 0, "Nvidia Tesla A100 GPU", "A2 Instance Core", "A2 Instance Ram"},
	{"a2-highgpu-8g", instance{"A100 40GB", 8}, 96, 680, 0, "Nvidia Tesla A100 GPU", "A2 Instance Core", "A2 Instance Ram"},
	{"a2-ultragpu-8g", instance{"A100 80GB", 8}, 96, 1360, 3000, "Nvidia Tesla A100 80GB GPU", "A2 Instance Core", "A2 Instance Ram"},
	{"g2-standard-12", instance{"L4", 1}, 12, 48, 0, "Nvidia L4 GPU", "G2 Instance Core", "G2 Instance Ram"},
}
